//! Real client libraries speaking RESP3 to rudis: redis-py 8 with its default protocol (3) and
//! the Rust `redis` crate with `protocol=resp3`. Each does a seed session, a pipeline,
//! WATCH/MULTI/EXEC (one that commits, one a concurrent write aborts) and SCAN, and checks the
//! values it gets back, as a user of the library would see them.
mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;

use common::Rudis;
use redis::{Commands, Value};

/// Checks `python3` can import redis-py 8; fails with the install command otherwise.
fn require_redis_py() {
    let check = Command::new("python3")
        .args([
            "-c",
            "import redis, sys; sys.exit(int(redis.__version__.split('.')[0]) < 8)",
        ])
        .status();
    assert!(
        matches!(check, Ok(s) if s.success()),
        "redis-py 8 is not installed: run `pip install -q 'redis>=8'` (bash .ci/run does)"
    );
}

const REDIS_PY_SESSION: &str = r#"
import sys
import redis

port = int(sys.argv[1])
r = redis.Redis(port=port, decode_responses=True)
info = r.client_info()
assert info["resp"] == "3", info

# Seed session.
assert r.ping() is True
assert r.set("greeting", "hello") is True
assert r.get("greeting") == "hello"
assert r.get("missing") is None
assert r.incr("counter") == 1
assert r.incr("counter", 41) == 42
assert r.hset("user:1", mapping={"name": "Ada", "born": "1815"}) == 2
assert r.hgetall("user:1") == {"name": "Ada", "born": "1815"}, r.hgetall("user:1")
assert r.hgetall("missing") == {}
assert r.hget("user:1", "name") == "Ada"
assert r.hrandfield("user:1", 1, withvalues=True) in (["name", "Ada"], ["born", "1815"]), \
    r.hrandfield("user:1", 1, withvalues=True)
assert r.expire("greeting", 100) is True
assert 0 < r.ttl("greeting") <= 100
assert r.ttl("missing") == -2
assert r.mget("greeting", "missing", "counter") == ["hello", None, "42"]
assert r.set("greeting", "hi", get=True) == "hello"
assert r.delete("greeting", "missing") == 1
assert r.exists("greeting") == 0
assert r.config_get("databases") == {"databases": "16"}, r.config_get("databases")
assert "redis_version" in r.info("server")

# A pipeline, without and with MULTI.
p = r.pipeline(transaction=False)
p.set("a", "1").incr("a").get("a").hgetall("user:1").get("missing")
assert p.execute() == [True, 2, "2", {"name": "Ada", "born": "1815"}, None]
p = r.pipeline(transaction=True)
p.set("b", "x").append("b", "y").get("b")
assert p.execute() == [True, 2, "xy"]

# WATCH/MULTI/EXEC: commits when the key is untouched, aborts when another client wrote it.
other = redis.Redis(port=port, decode_responses=True)
with r.pipeline() as p:
    p.watch("counter")
    n = int(p.get("counter"))
    p.multi()
    p.set("counter", n + 1)
    assert p.execute() == [True]
assert r.get("counter") == "43"
with r.pipeline() as p:
    p.watch("counter")
    other.set("counter", "100")
    p.multi()
    p.set("counter", "0")
    try:
        p.execute()
        raise AssertionError("EXEC ran although a watched key changed")
    except redis.WatchError:
        pass
assert r.get("counter") == "100"

# SCAN over every key, in pages.
r.flushdb()
r.mset({f"key:{i}": i for i in range(250)})
assert set(r.scan_iter(match="key:*", count=17)) == {f"key:{i}" for i in range(250)}
assert set(r.hscan_iter("missing")) == set()
r.hset("h", mapping={f"f{i}": i for i in range(40)})
assert dict(r.hscan_iter("h")) == {f"f{i}": str(i) for i in range(40)}
print("ok")
"#;

#[test]
fn redis_py_with_its_default_protocol() {
    require_redis_py();
    let server = Rudis::start(&[]);
    let out = Command::new("python3")
        .args(["-c", REDIS_PY_SESSION, &server.port.to_string()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "redis-py session failed:\n{}{}\nrudis log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}

#[test]
fn redis_crate_with_resp3() {
    let server = Rudis::start(&[]);
    let url = format!("redis://127.0.0.1:{}/?protocol=resp3", server.port);
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut c = client.get_connection().expect("connect with RESP3");
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(info.contains(" resp=3"), "{info}");

    // Seed session, and the RESP3 types behind the values.
    let () = c.set("greeting", "hello").unwrap();
    assert_eq!(c.get::<_, String>("greeting").unwrap(), "hello");
    assert_eq!(
        redis::cmd("GET").arg("missing").query::<Value>(&mut c),
        Ok(Value::Nil)
    );
    assert_eq!(c.incr::<_, _, i64>("counter", 1).unwrap(), 1);
    assert_eq!(c.incr::<_, _, i64>("counter", 41).unwrap(), 42);
    let () = c
        .hset_multiple("user:1", &[("name", "Ada"), ("born", "1815")])
        .unwrap();
    let all: HashMap<String, String> = c.hgetall("user:1").unwrap();
    assert_eq!(
        all,
        HashMap::from([
            ("name".into(), "Ada".into()),
            ("born".into(), "1815".into())
        ])
    );
    let raw: Value = redis::cmd("HGETALL").arg("user:1").query(&mut c).unwrap();
    assert!(matches!(&raw, Value::Map(m) if m.len() == 2), "{raw:?}");
    let raw: Value = redis::cmd("INFO").arg("server").query(&mut c).unwrap();
    assert!(
        matches!(&raw, Value::VerbatimString { text, .. } if text.contains("redis_version:")),
        "{raw:?}"
    );
    assert!(c.expire::<_, bool>("greeting", 100).unwrap());
    let ttl: i64 = c.ttl("greeting").unwrap();
    assert!((1..=100).contains(&ttl), "{ttl}");
    let got: Vec<Option<String>> = c.mget(&["greeting", "missing", "counter"]).unwrap();
    assert_eq!(got, [Some("hello".into()), None, Some("42".into())]);
    assert_eq!(c.del::<_, i64>(&["greeting", "missing"]).unwrap(), 1);

    // A pipeline, plain and atomic.
    let (a, b, d, missing): (bool, i64, String, Option<String>) = redis::pipe()
        .set("a", 1)
        .incr("a", 1)
        .get("a")
        .get("missing")
        .query(&mut c)
        .unwrap();
    assert_eq!((a, b, d.as_str(), missing), (true, 2, "2", None));
    let (len, v): (i64, String) = redis::pipe()
        .atomic()
        .set("b", "x")
        .ignore()
        .append("b", "y")
        .get("b")
        .query(&mut c)
        .unwrap();
    assert_eq!((len, v.as_str()), (2, "xy"));

    // WATCH/MULTI/EXEC: commits, then a concurrent write aborts the second (a null reply).
    let mut other = client.get_connection().unwrap();
    let () = redis::cmd("WATCH").arg("counter").query(&mut c).unwrap();
    let r: Option<(bool,)> = redis::pipe()
        .atomic()
        .set("counter", 43)
        .query(&mut c)
        .unwrap();
    assert_eq!(r, Some((true,)));
    let () = redis::cmd("WATCH").arg("counter").query(&mut c).unwrap();
    let () = other.set("counter", 100).unwrap();
    let r: Option<(bool,)> = redis::pipe()
        .atomic()
        .set("counter", 0)
        .query(&mut c)
        .unwrap();
    assert_eq!(r, None, "EXEC ran although a watched key changed");
    assert_eq!(c.get::<_, i64>("counter").unwrap(), 100);

    // SCAN over every key.
    let () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    let pairs: Vec<(String, i64)> = (0..250).map(|i| (format!("key:{i}"), i)).collect();
    let () = c.mset(&pairs).unwrap();
    let keys: HashSet<String> = c.scan_match("key:*").unwrap().collect();
    assert_eq!(keys, pairs.iter().map(|(k, _)| k.clone()).collect());
}
