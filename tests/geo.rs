//! Geo sets beyond what a differential script can say: random points over the whole globe
//! (poles and the antimeridian included) and random searches of every form give the same
//! bytes as redis-server in both protocols; GEOADD is logged as the ZADD Redis logs, and a
//! real redis-server loading rudis's file finds the same members at the same places.
mod aofutil;
mod common;

use aofutil::{check_aof, redis_loading};
use common::{show, Raw, RealRedis, Rng, Rudis};

fn same(a: &mut Raw, b: &mut Raw, cmd: &[String]) -> Vec<u8> {
    let ours = a.cmd(cmd);
    let theirs = b.cmd(cmd);
    assert!(
        ours == theirs,
        "{}: rudis {} redis {}",
        cmd.join(" "),
        show(&ours[..ours.len().min(400)]),
        show(&theirs[..theirs.len().min(400)])
    );
    ours
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// A coordinate in `lo..hi` with up to 6 decimals, written as a user would.
fn coord(g: &mut Rng, lo: f64, hi: f64) -> String {
    let x = lo + (hi - lo) * (g.below(1_000_001) as f64 / 1_000_000.0);
    format!("{:.*}", g.below(7) as usize, x)
}

fn point(g: &mut Rng) -> (String, String) {
    match g.below(6) {
        // Near the poles' limits and the antimeridian, where cells wrap and shrink.
        0 => (coord(g, 170.0, 180.0), coord(g, 80.0, 85.05)),
        1 => (coord(g, -180.0, -170.0), coord(g, -85.05, -80.0)),
        _ => (coord(g, -180.0, 180.0), coord(g, -85.05, 85.05)),
    }
}

fn random_search(g: &mut Rng, members: usize) -> Vec<String> {
    let units = ["m", "km", "mi", "ft"];
    let unit = units[g.below(4) as usize];
    let size = ["1", "50", "500", "3000", "12000"][g.below(5) as usize];
    let scaled = match unit {
        "m" => format!("{size}000"),
        "ft" => format!("{size}000"),
        _ => size.to_string(),
    };
    let member = format!("m{}", g.below(members as u64));
    let (lon, lat) = point(g);
    let mut cmd = match g.below(4) {
        0 => words(&format!("GEORADIUS g {lon} {lat} {scaled} {unit}")),
        1 => words(&format!("GEORADIUSBYMEMBER g {member} {scaled} {unit}")),
        2 => words(&format!(
            "GEOSEARCH g FROMLONLAT {lon} {lat} BYBOX {scaled} {} {unit}",
            ["1", "100", "2000"][g.below(3) as usize]
        )),
        _ => words(&format!(
            "GEOSEARCH g FROMMEMBER {member} BYRADIUS {scaled} {unit}"
        )),
    };
    for opt in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
        if g.below(2) == 0 {
            cmd.push(opt.into());
        }
    }
    match g.below(4) {
        0 => cmd.push("ASC".into()),
        1 => cmd.push("DESC".into()),
        _ => {}
    }
    if g.below(3) == 0 {
        cmd.extend(words(&format!("COUNT {}", 1 + g.below(30))));
        if g.below(3) == 0 {
            cmd.push("ANY".into());
        }
    }
    cmd
}

#[test]
fn random_points_and_searches_answer_as_redis() {
    let rudis = Rudis::start(&[]);
    let redis = RealRedis::start(&[]);
    let seed = Rng::from_clock().next();
    eprintln!("seed {seed}");
    let mut g = Rng::seeded(seed);
    for proto in ["2", "3"] {
        let (mut a, mut b) = (rudis.raw(), redis.raw());
        // The replies differ in the client ids only.
        a.cmd(&words(&format!("HELLO {proto}")));
        b.cmd(&words(&format!("HELLO {proto}")));
        same(&mut a, &mut b, &words("DEL g"));
        let n = 400;
        let mut found = 0;
        // Past zset-max-listpack-entries: both encodings of the set are searched.
        for i in 0..n {
            let (lon, lat) = point(&mut g);
            same(
                &mut a,
                &mut b,
                &words(&format!("GEOADD g {lon} {lat} m{i}")),
            );
            if i == 60 || i == n - 1 {
                for _ in 0..60 {
                    let cmd = random_search(&mut g, i + 1);
                    if same(&mut a, &mut b, &cmd) != b"*0\r\n" {
                        found += 1;
                    }
                }
            }
        }
        // The searches mostly find something: the comparison says something.
        assert!(found > 60, "only {found} of 120 searches found anything");
        for i in (0..n).step_by(7) {
            let j = g.below(n as u64);
            same(
                &mut a,
                &mut b,
                &words(&format!("GEOPOS g m{i} m{j} nosuch")),
            );
            same(&mut a, &mut b, &words(&format!("GEOHASH g m{i} m{j}")));
            same(&mut a, &mut b, &words(&format!("GEODIST g m{i} m{j} km")));
        }
        for _ in 0..20 {
            let mut cmd = random_search(&mut g, n);
            if cmd[0] != "GEOSEARCH" {
                continue;
            }
            cmd.retain(|w| !w.starts_with("WITH"));
            cmd.splice(0..2, words("GEOSEARCHSTORE dst g"));
            same(&mut a, &mut b, &cmd);
            same(
                &mut a,
                &mut b,
                &words("GEOSEARCH dst FROMLONLAT 0 0 BYRADIUS 20000 km ASC WITHCOORD"),
            );
        }
    }
}

#[test]
fn geoadd_is_logged_as_zadd_and_redis_loads_the_file() {
    let r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    let mut g = Rng::seeded(3);
    let mut cmd = words("GEOADD places");
    for i in 0..200 {
        let (lon, lat) = point(&mut g);
        cmd.extend([lon, lat, format!("p{i}")]);
    }
    assert_eq!(c.cmd(&cmd), b":200\r\n");
    assert_eq!(
        c.cmd(&words("GEOADD places CH XX 1 2 p0 3 4 nosuch")),
        b":1\r\n"
    );
    // A change of nothing is not logged.
    assert_eq!(c.cmd(&words("GEOADD places NX 5 6 p1")), b":0\r\n");
    assert_eq!(
        c.cmd(&words(
            "GEOSEARCHSTORE near places FROMLONLAT 0 0 BYRADIUS 5000 km"
        )),
        c.cmd(&words(
            "GEOSEARCHSTORE near places FROMLONLAT 0 0 BYRADIUS 5000 km"
        ))
    );
    let text = String::from_utf8_lossy(&std::fs::read(r.aof_path()).unwrap()).into_owned();
    assert!(!text.contains("GEOADD"), "GEOADD is logged as ZADD");
    // In lower case, as Redis writes it.
    assert_eq!(text.matches("$4\r\nzadd\r\n").count(), 2, "{text}");
    assert!(text.contains("$2\r\nCH\r\n$2\r\nXX\r\n"));

    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "redis-check-aof rejects the file:\n{out}");
    let (redis, _dir) = redis_loading(&r.aof_path());
    let mut theirs = redis.raw();
    let ask = [
        "GEOSEARCH places FROMLONLAT 0 0 BYRADIUS 30000 km ASC WITHCOORD WITHHASH",
        "GEOSEARCH near FROMLONLAT 0 0 BYRADIUS 30000 km ASC WITHCOORD WITHHASH",
        "GEOPOS places p0 p1 nosuch",
    ];
    for q in ask {
        same(&mut c, &mut theirs, &words(q));
    }

    // The rewrite dumps the sets as ZADD of the same scores: Redis loads that file too.
    c.cmd(&words("BGREWRITEAOF"));
    aofutil::wait_log(&r, "Background AOF rewrite finished successfully", 1, 30);
    let text = String::from_utf8_lossy(&std::fs::read(r.aof_path()).unwrap()).into_owned();
    assert!(!text.contains("GEOSEARCHSTORE"), "the rewrite dumps values");
    let (redis, _dir) = redis_loading(&r.aof_path());
    let mut theirs = redis.raw();
    for q in ask {
        same(&mut c, &mut theirs, &words(q));
    }
}

/// WATCH sees what Redis signals: a GEOADD that changes nothing and the searches do not
/// count; a GEOADD that moves a member and a GEOSEARCHSTORE (storing or deleting) do.
#[test]
fn watch_sees_the_geo_changes_redis_sees() {
    let setup: &[&[&str]] = &[
        &["DEL", "w"],
        &["GEOADD", "w", "13", "38", "a", "15", "37", "b"],
    ];
    #[rustfmt::skip]
    let cmds: &[&[&str]] = &[
        &["GEOADD", "w", "13", "38", "a"],
        &["GEOADD", "w", "NX", "14", "38", "a"],
        &["GEOADD", "w", "XX", "14", "38", "nosuch"],
        &["GEOPOS", "w", "a"],
        &["GEOSEARCH", "w", "FROMLONLAT", "13", "38", "BYRADIUS", "10", "km"],
        &["GEORADIUS", "w", "13", "38", "10", "km"],
        &["GEOADD", "w", "14", "38", "a"],
        &["GEOSEARCHSTORE", "w", "w", "FROMLONLAT", "13", "38", "BYRADIUS", "10", "km"],
        &["GEOSEARCHSTORE", "w", "w", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m"],
    ];
    common::assert_watch_outcomes("w", setup, cmds, |i| i >= 6);
}
