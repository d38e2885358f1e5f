//! The request parser and the reply writer, without sockets.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rudis::resp::parse::{Limits, Parsed, RequestParser};
use rudis::resp::reply::encode_command;
use rudis::resp::ReplyBuf;

/// Parses every request in `input`; returns the number of arguments seen.
fn parse_all(input: &[u8]) -> usize {
    let mut p = RequestParser::new(Limits::default());
    let mut args = 0;
    while let Ok(Parsed::Request { .. }) = p.parse(input) {
        args += p.args().iter().map(|a| a.bytes(input).len()).sum::<usize>();
    }
    args
}

fn set_request(i: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let key = format!("key:{i:012}");
    encode_command(&mut out, &[&b"SET"[..], key.as_bytes(), b"xxx"]);
    out
}

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let one = set_request(1);
    g.throughput(Throughput::Elements(1));
    g.bench_function("set", |b| b.iter(|| parse_all(black_box(&one))));
    let inline = b"SET key:000000000001 xxx\r\n".to_vec();
    g.bench_function("set_inline", |b| b.iter(|| parse_all(black_box(&inline))));
    for n in [16usize, 1000] {
        let batch: Vec<u8> = (0..n).flat_map(set_request).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("set_pipelined_{n}"), |b| {
            b.iter(|| parse_all(black_box(&batch)))
        });
    }
    let mut big = Vec::new();
    encode_command(&mut big, &[&b"SET"[..], b"k", &vec![b'v'; 64 * 1024]]);
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("set_64k_value", |b| b.iter(|| parse_all(black_box(&big))));
    g.finish();
}

fn writer(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    g.throughput(Throughput::Elements(1));
    let mut out = ReplyBuf::new();
    g.bench_function("ok", |b| {
        b.iter(|| {
            out.clear();
            out.ok();
        })
    });
    g.bench_function("bulk_3", |b| {
        b.iter(|| {
            out.clear();
            out.bulk(black_box(b"xxx"));
        })
    });
    g.bench_function("int", |b| {
        b.iter(|| {
            out.clear();
            out.int(black_box(1_234_567));
        })
    });
    let fields: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("field:{i}").into_bytes())
        .collect();
    g.throughput(Throughput::Elements(fields.len() as u64));
    g.bench_function("array_of_100_bulks", |b| {
        b.iter(|| {
            out.clear();
            out.array(fields.len());
            for f in &fields {
                out.bulk(f);
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_command_set", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(64),
            |v| encode_command(v, &[&b"SET"[..], b"key:000000000001", b"xxx"]),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, parser, writer);
criterion_main!(benches);
