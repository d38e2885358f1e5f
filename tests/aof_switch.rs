//! CONFIG SET appendonly at run time (issue 19): turned on, the AOF is rewritten from the data
//! set and every write from then on is in it, those made during that rewrite too; turned off,
//! nothing more is written to it. INFO persistence and CONFIG REWRITE follow.
mod aofutil;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{show, Raw, RealRedis, Rudis};

fn persistence(c: &mut Raw, field: &str) -> String {
    let text = String::from_utf8(c.cmd(&["INFO", "persistence"])).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .to_string()
}

/// INFO persistence's field names, in order.
fn persistence_names(c: &mut Raw) -> Vec<String> {
    let text = String::from_utf8(c.cmd(&["INFO", "persistence"])).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_string()))
        .collect()
}

/// Waits for `n` AOF rewrites done and none running.
fn wait_rewrites(c: &mut Raw, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while persistence(c, "aof_rewrites").parse::<u64>().unwrap() < n
        || persistence(c, "aof_rewrite_in_progress") == "1"
    {
        assert!(Instant::now() < deadline, "no AOF rewrite finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `n` keys `pop:N` of 50 bytes.
fn populate(c: &mut Raw, n: u64) {
    let n = n.to_string();
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", &n, "pop", "50"]), b"+OK\r\n");
}

/// A config file beside the data, so that CONFIG REWRITE can record the switch and a restart
/// reads it.
fn start_with_conf(appendonly: &str) -> (Rudis, tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("rudis.conf");
    std::fs::write(&conf, format!("appendonly {appendonly}\nsave \"\"\n")).unwrap();
    let r = Rudis::start_in(
        tmp.path(),
        &[conf.to_str().unwrap(), "--enable-debug-command", "yes"],
    );
    (r, tmp, conf)
}

#[test]
fn turned_on_the_aof_holds_the_data_and_every_later_write() {
    let (mut r, _tmp, conf) = start_with_conf("no");
    let mut c = r.raw();
    assert_eq!(persistence(&mut c, "aof_enabled"), "0");
    assert_eq!(c.cmd(&["SET", "before", "1"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "f", "v"]), b":1\r\n");
    assert_eq!(c.cmd(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["RPUSH", "l3", "a", "b"]), b":2\r\n");
    assert_eq!(c.cmd(&["SELECT", "0"]), b"+OK\r\n");
    assert!(!r.aof_path().exists());

    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), b"+OK\r\n");
    // On at once, as Redis's aof_state leaves AOF_OFF at once.
    assert_eq!(persistence(&mut c, "aof_enabled"), "1");
    assert!(c
        .cmd(&["CONFIG", "GET", "appendonly"])
        .ends_with(b"$3\r\nyes\r\n"));
    assert_eq!(c.cmd(&["SET", "during", "2"]), b"+OK\r\n");
    wait_rewrites(&mut c, 1);
    assert_eq!(c.cmd(&["SET", "after", "3"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["DEL", "before"]), b":1\r\n");
    assert_eq!(c.cmd(&["SET", "before", "4"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("appendonly yes"), "{text}");
    assert!(!text.contains("appendonly no"), "{text}");

    // The config now says yes: the restart loads the AOF (there is no dump.rdb).
    r.restart();
    assert!(!r.dir.join("dump.rdb").exists());
    let mut c = r.raw();
    assert_eq!(persistence(&mut c, "aof_enabled"), "1");
    assert_eq!(
        c.cmd(&["MGET", "before", "during", "after"]),
        b"*3\r\n$1\r\n4\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    assert_eq!(c.cmd(&["HGET", "h", "f"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(
        show(&c.cmd(&["LRANGE", "l3", "0", "-1"])),
        show(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n")
    );
}

#[test]
fn turned_off_nothing_more_is_written_and_on_again_it_is_whole() {
    let (mut r, _tmp, conf) = start_with_conf("yes");
    let mut c = r.raw();
    assert_eq!(persistence(&mut c, "aof_enabled"), "1");
    assert_eq!(c.cmd(&["SET", "k1", "kept"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), b"+OK\r\n");
    assert_eq!(persistence(&mut c, "aof_enabled"), "0");
    // Written and closed before the reply.
    let size = std::fs::metadata(r.aof_path()).unwrap().len();
    assert!(std::fs::read(r.aof_path())
        .unwrap()
        .windows(2)
        .any(|w| w == b"k1"));
    assert_eq!(c.cmd(&["SET", "k2", "not-logged"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["INCR", "k3"]), b":1\r\n");
    // Nothing made while off reaches the file (the writer would have written it by now).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::metadata(r.aof_path()).unwrap().len(), size);
    let bytes = std::fs::read(r.aof_path()).unwrap();
    assert!(!bytes.windows(2).any(|w| w == b"k2" || w == b"k3"));
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("appendonly no"));

    // A restart now (config says no, no dump.rdb) would start empty; the AOF file is what it
    // was when turned off. Turned on again, it holds everything, k2 and k3 included.
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), b"+OK\r\n");
    wait_rewrites(&mut c, 1);
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    r.restart();
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["MGET", "k1", "k2", "k3"]),
        b"*3\r\n$4\r\nkept\r\n$10\r\nnot-logged\r\n$1\r\n1\r\n"
    );
}

/// Counters incremented by 4 clients the whole time, across many shards and with multi-key
/// commands, while the AOF is turned on, off, and on again: the file ends up with exactly the
/// counts the server holds.
#[test]
fn writes_during_the_rewrite_that_turns_it_on_are_in_the_file() {
    let (mut r, _tmp, _conf) = start_with_conf("no");
    let mut c = r.raw();
    // Enough data for the dump to take a while, so writes land on both sides of it.
    populate(&mut c, 200_000);
    let stop = Arc::new(AtomicBool::new(false));
    let port = r.port;
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let a = format!("cnt{}", (n * 7 + t) % 300);
                    let b = format!("cnt{}", (n * 13 + t + 1) % 300);
                    assert!(c.cmd(&["INCR", &a]).starts_with(b":"));
                    // Two keys of (most likely) two shards in one command.
                    let reply = c.cmd(&[
                        "MSET",
                        &format!("{a}-last"),
                        &n.to_string(),
                        &format!("{b}-last"),
                        &n.to_string(),
                    ]);
                    assert_eq!(reply, b"+OK\r\n");
                    n += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), b"+OK\r\n");
    // Off and on again while that rewrite may still run: it must then be discarded, since it
    // missed what was written while off.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), b"+OK\r\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while persistence(&mut c, "aof_rewrite_in_progress") == "1"
        || persistence(&mut c, "aof_rewrite_scheduled") == "1"
        || persistence(&mut c, "aof_rewrites") == "0"
    {
        assert!(Instant::now() < deadline, "no AOF rewrite finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let keys: Vec<String> = (0..300)
        .flat_map(|i| [format!("cnt{i}"), format!("cnt{i}-last")])
        .chain(["pop:0".into(), "pop:199999".into()])
        .collect();
    let mut mget = vec!["MGET".to_string()];
    mget.extend(keys);
    let before = c.cmd(&mget);
    let dbsize = c.cmd(&["DBSIZE"]);
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    r.restart();
    let mut c = r.raw();
    assert_eq!(show(&c.cmd(&["DBSIZE"])), show(&dbsize));
    assert_eq!(show(&c.cmd(&mget)), show(&before));
}

/// INFO persistence lists the fields Redis 7.0 lists, off and on: the sizes only while on.
#[test]
fn info_persistence_has_redis_fields_off_and_on() {
    let redis = RealRedis::start(&[]);
    let (r, _tmp, _conf) = start_with_conf("no");
    let (mut a, mut b) = (redis.raw(), r.raw());
    let off = persistence_names(&mut a);
    assert_eq!(persistence_names(&mut b), off);
    assert!(!off.iter().any(|n| n == "aof_current_size"));
    for c in [&mut a, &mut b] {
        assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), b"+OK\r\n");
        wait_rewrites(c, 1);
    }
    let on = persistence_names(&mut a);
    assert!(on.iter().any(|n| n == "aof_current_size"));
    assert_eq!(persistence_names(&mut b), on);
    assert_eq!(persistence(&mut b, "aof_enabled"), "1");
}

/// As Redis: no SHUTDOWN (but SHUTDOWN FORCE) while the AOF just turned on has no data yet.
#[test]
fn shutdown_waits_for_the_initial_rewrite() {
    let (mut r, _tmp, _conf) = start_with_conf("no");
    let mut c = r.raw();
    // Enough for the dump to outlast the next command by far.
    populate(&mut c, 300_000);
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), b"+OK\r\n");
    assert_eq!(
        c.cmd(&["SHUTDOWN"]),
        b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    assert!(r.log().contains("Writing initial AOF, can't exit."));
    wait_rewrites(&mut c, 1);
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    c.send(&["SHUTDOWN"]);
    assert!(aofutil::wait_exit(&mut r, 20).success());
    r.restart();
    assert_eq!(r.raw().cmd(&["DBSIZE"]), b":300000\r\n");
}

/// As Redis 7.0, BGREWRITEAOF rewrites with the AOF off too, and DEBUG LOADAOF then loads
/// what it wrote (unit/other's "EXPIRES after a reload"); the AOF stays off, and nothing later
/// is appended to the file.
#[test]
fn bgrewriteaof_with_the_aof_off_writes_a_file_debug_loadaof_loads() {
    let (r, _tmp, _conf) = start_with_conf("no");
    let mut c = r.raw();
    assert!(c
        .cmd(&["DEBUG", "LOADAOF"])
        .starts_with(b"-ERR DEBUG LOADAOF: there is no AOF file"));
    populate(&mut c, 100);
    assert_eq!(c.cmd(&["SET", "x", "before"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["EXPIRE", "x", "1000"]), b":1\r\n");
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        b"+Background append only file rewriting started\r\n"
    );
    wait_rewrites(&mut c, 1);
    assert_eq!(persistence(&mut c, "aof_enabled"), "0");
    assert!(r.aof_path().exists());
    let written = std::fs::read(r.aof_path()).unwrap();
    // Not the file's: loading it must bring these back as they were at the rewrite.
    assert_eq!(c.cmd(&["SET", "x", "after"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "later", "1"]), b"+OK\r\n");
    assert_eq!(std::fs::read(r.aof_path()).unwrap(), written);
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "x"]), b"$6\r\nbefore\r\n");
    let ttl: i64 = String::from_utf8(c.cmd(&["TTL", "x"]))
        .unwrap()
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!((900..=1000).contains(&ttl), "ttl {ttl}");
    assert_eq!(c.cmd(&["EXISTS", "later"]), b":0\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]), b":101\r\n");
}

/// Inside EXEC, BGREWRITEAOF and CONFIG SET appendonly yes schedule the rewrite rather than
/// start it, with Redis's words (its unit/multi), and the rewrite then runs: with the AOF
/// off, and again once the transaction turned it on.
#[test]
fn a_transaction_schedules_the_rewrite() {
    let (r, _conf_dir, _conf) = start_with_conf("no");
    let mut c = r.raw();
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "foo", "bar"]);
    c.cmd(&["BGREWRITEAOF"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        b"*2\r\n+OK\r\n+Background append only file rewriting scheduled\r\n"
    );
    wait_rewrites(&mut c, 1);
    c.cmd(&["MULTI"]);
    c.cmd(&["CONFIG", "SET", "appendonly", "yes"]);
    assert_eq!(c.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");
    wait_rewrites(&mut c, 2);
    assert_eq!(persistence(&mut c, "aof_enabled"), "1");
    assert!(r
        .log()
        .contains("AOF was enabled during a transaction. An AOF background was scheduled"));
}

/// Turned off while a rewrite runs, the rewrite stops at once and its file is thrown away, as
/// Redis kills its rewrite child: a slow rewrite (10 s per key here) would otherwise hold
/// off the next BGREWRITEAOF for as long as it takes.
#[test]
fn turning_the_aof_off_stops_a_running_rewrite() {
    let r = Rudis::start(&["--appendonly", "yes", "--enable-debug-command", "yes"]);
    let mut c = r.raw();
    populate(&mut c, 10);
    let before = std::fs::read(r.aof_path()).unwrap();
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000000"]);
    assert!(c.cmd(&["BGREWRITEAOF"]).starts_with(b"+"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(persistence(&mut c, "aof_rewrite_in_progress"), "1");
    let off = Instant::now();
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), b"+OK\r\n");
    while persistence(&mut c, "aof_rewrite_in_progress") == "1" {
        assert!(
            off.elapsed() < Duration::from_secs(5),
            "the rewrite went on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        r.log().contains("Killing running AOF rewrite child"),
        "{}",
        r.log()
    );
    // Not a failure, and the file is the one from before the rewrite.
    assert_eq!(persistence(&mut c, "aof_last_bgrewrite_status"), "ok");
    assert_eq!(std::fs::read(r.aof_path()).unwrap(), before);
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        b"+Background append only file rewriting started\r\n"
    );
}
