//! Commands through `commands::execute`, as a connection runs them but without sockets (the
//! AOF loader's path): table lookup, lock plan, shard locks, handler, reply.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rudis::client::Client;
use rudis::commands;
use rudis::config::Config;
use rudis::resp::ReplyBuf;
use rudis::shared::Shared;

const KEYS: usize = 100_000;

fn server() -> Shared {
    let config = Config {
        appendonly: false,
        ..Config::default()
    };
    Shared::new(config)
}

fn keys() -> Vec<Vec<u8>> {
    (0..KEYS)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect()
}

fn store(c: &mut Criterion) {
    let shared = server();
    let keys = keys();
    let mut client = Client::new(None);
    let mut out = ReplyBuf::new();
    let mut exec = |argv: &[&[u8]]| {
        out.clear();
        commands::execute(&shared, &mut client, argv, &mut out);
        black_box(out.len());
    };
    let mut g = c.benchmark_group("execute");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    let mut next = || {
        i = (i + 1) % KEYS;
        i
    };
    g.bench_function("set_new_and_overwrite", |b| {
        b.iter(|| exec(&[b"SET", &keys[next()], b"xxx"]))
    });
    g.bench_function("get_hit", |b| b.iter(|| exec(&[b"GET", &keys[next()]])));
    g.bench_function("get_miss", |b| b.iter(|| exec(&[b"GET", b"nokey"])));
    g.bench_function("hset", |b| {
        b.iter(|| exec(&[b"HSET", b"myhash", &keys[next() % 100], b"xxx"]))
    });
    g.bench_function("ping", |b| b.iter(|| exec(&[b"PING"])));
    g.finish();

    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.throughput(Throughput::Elements(KEYS as u64));
    g.bench_function("set_100k_fresh_store", |b| {
        b.iter(|| {
            let shared = server();
            let mut client = Client::new(None);
            for k in &keys {
                out.clear();
                commands::execute(
                    &shared,
                    &mut client,
                    &[&b"SET"[..], k, b"0123456789"],
                    &mut out,
                );
            }
            shared
        })
    });
    g.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
