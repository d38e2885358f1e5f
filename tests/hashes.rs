//! Hashes through the AOF: what is logged, and what a restart brings back.
mod common;

use common::Rudis;

#[test]
fn hash_writes_survive_a_restart_and_log_what_they_did() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]),
        b":3\r\n"
    );
    assert_eq!(c.cmd(&["HDEL", "h", "b", "nope"]), b":1\r\n");
    assert_eq!(c.cmd(&["HDEL", "h", "nope"]), b":0\r\n");
    assert_eq!(c.cmd(&["HINCRBY", "h", "a", "41"]), b":42\r\n");
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "0.1"]), b"$3\r\n0.1\r\n");
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "0.2"]), b"$3\r\n0.3\r\n");
    assert_eq!(c.cmd(&["HSETNX", "h", "a", "x"]), b":0\r\n");
    assert_eq!(c.cmd(&["HSETNX", "h", "n", "x"]), b":1\r\n");
    assert_eq!(c.cmd(&["HSET", "gone", "only", "1"]), b":1\r\n");
    assert_eq!(c.cmd(&["HDEL", "gone", "only"]), b":1\r\n");
    // Past 128 fields the hash becomes a table.
    for i in 0..200 {
        c.cmd(&["HSET", "big", &format!("f{i}"), &i.to_string()]);
    }
    let before = c.cmd(&["HGETALL", "h"]);
    assert_eq!(
        before,
        b"*8\r\n$1\r\na\r\n$2\r\n42\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nf\r\n$3\r\n0.3\r\n$1\r\nn\r\n$1\r\nx\r\n"
    );

    let aof = String::from_utf8_lossy(&std::fs::read(r.aof_path()).expect("aof")).into_owned();
    // HINCRBYFLOAT is logged as the HSET of the value it produced, as Redis logs it.
    assert!(!aof.contains("HINCRBYFLOAT"), "{aof}");
    assert!(
        aof.contains("HSET\r\n$1\r\nh\r\n$1\r\nf\r\n$3\r\n0.3\r\n"),
        "{aof}"
    );
    // Changing nothing logs nothing.
    assert_eq!(aof.matches("HDEL").count(), 2, "{aof}");
    assert_eq!(aof.matches("HSETNX").count(), 1, "{aof}");

    r.restart();
    let mut c = r.raw();
    assert_eq!(c.cmd(&["HGETALL", "h"]), before, "small hash order kept");
    assert_eq!(c.cmd(&["EXISTS", "gone"]), b":0\r\n");
    assert_eq!(c.cmd(&["HLEN", "big"]), b":200\r\n");
    assert_eq!(c.cmd(&["HGET", "big", "f199"]), b"$3\r\n199\r\n");
}

/// Issue 21: HSCAN of a big hash pages through it COUNT fields at a time with a real cursor
/// (it used to return the whole hash at cursor 0, one huge reply built under the shard's lock),
/// and the pages together return every field exactly once when nothing changes meanwhile.
#[test]
fn hscan_of_a_million_fields_in_count_sized_pages() {
    let server = common::Rudis::start(&["--appendonly", "no"]);
    let mut c = server.raw();
    let n = 1_000_000usize;
    let cmds: Vec<Vec<String>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| {
            let mut cmd = vec!["HSET".to_string(), "big".into()];
            for i in chunk {
                cmd.push(format!("f{i}"));
                cmd.push(i.to_string());
            }
            cmd
        })
        .collect();
    c.pipeline_ok(&cmds);
    let (items, calls, largest) = common::scan_pages(&mut c, &["HSCAN", "big"], 1000);
    let mut seen = vec![false; n];
    for pair in items.chunks(2) {
        let i: usize = std::str::from_utf8(&pair[1]).unwrap().parse().unwrap();
        assert_eq!(pair[0], format!("f{i}").as_bytes());
        assert!(!seen[i], "field f{i} returned twice");
        seen[i] = true;
    }
    let largest = largest / 2;
    assert!(seen.iter().all(|&s| s), "some fields never returned");
    assert!(largest <= 1000, "a page of {largest} fields for COUNT 1000");
    assert!(calls >= n / 1000, "{calls} calls");
}
