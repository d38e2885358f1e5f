//! Redis's own tools against rudis: redis-cli interactive (in a pseudo-terminal, with the hints
//! it builds from COMMAND DOCS), piped, and --scan; redis-benchmark.
mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{redis_cli, require_tool, Rudis};

/// Runs redis-cli in a pseudo-terminal (`script`), typing each of `lines` once redis-cli shows
/// its prompt (it discards what is typed while a command runs), and returns what the terminal
/// showed.
fn interactive(port: u16, lines: &[&str]) -> String {
    require_tool("redis-cli");
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "script is not installed: run `apt-get install -y bsdutils` (util-linux elsewhere)"
    );
    // Without a size, linenoise asks the terminal for one and waits for an answer.
    let cmd = format!("stty cols 200 rows 50; redis-cli -p {port}");
    let mut child = Command::new("script")
        .args(["-q", "-c", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let screen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let reader = {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let prompt = format!("127.0.0.1:{port}> ");
    // A fresh prompt starts a line; the prompt redrawn while a line is edited does not (it
    // follows "\r" and an erase). Waiting for the n-th fresh prompt, not merely for output that
    // ends with the prompt, keeps a redraw split across reads from passing for one.
    let fresh_prompts = |screen: &[u8]| {
        let fresh = format!("\n{prompt}");
        screen
            .windows(fresh.len())
            .filter(|w| *w == fresh.as_bytes())
            .count()
            + screen.starts_with(prompt.as_bytes()) as usize
    };
    let wait_prompt = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = screen.lock().unwrap().clone();
            if fresh_prompts(&s) >= n && s.ends_with(prompt.as_bytes()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no prompt:\n{}",
                String::from_utf8_lossy(&s)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    for (i, l) in lines.iter().chain(&["quit"]).enumerate() {
        wait_prompt(i + 1);
        // Typed in two halves, so that redis-cli shows its hints as a user would see them.
        let (a, b) = l.split_at(l.len() / 2);
        stdin.write_all(a.as_bytes()).expect("type");
        std::thread::sleep(Duration::from_millis(30));
        stdin.write_all(b.as_bytes()).expect("type");
        std::thread::sleep(Duration::from_millis(30));
        stdin.write_all(b"\r").expect("type");
    }
    let _ = child.wait();
    drop(stdin);
    let _ = reader.join();
    let out = screen.lock().unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn redis_cli_interactive_session_with_hints() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let screen = interactive(
        r.port,
        &[
            "HSET user:1 name Ada lang rust",
            "HGETALL user:1",
            "HINCRBYFLOAT user:1 score 0.1",
            "CLIENT SETNAME cli",
            "INFO keyspace",
        ],
    );
    assert!(screen.contains("(integer) 2"), "{screen}");
    assert!(screen.contains("1) \"name\""), "{screen}");
    assert!(screen.contains("4) \"rust\""), "{screen}");
    assert!(screen.contains("\"0.1\""), "{screen}");
    assert!(screen.contains("db0:keys=1,expires=0"), "{screen}");
    // The hints come from COMMAND DOCS' arguments.
    assert!(
        screen.contains("key field value [field value ...]"),
        "no HSET hint:\n{screen}"
    );
    assert!(
        screen.contains("connection-name"),
        "no CLIENT SETNAME hint:\n{screen}"
    );
    assert!(!screen.contains("(error)"), "{screen}");
    assert!(!screen.contains("ERR"), "{screen}");
}

#[test]
fn redis_cli_piped_and_scan() {
    let r = Rudis::start(&["--appendonly", "no"]);
    require_tool("redis-cli");
    let mut child = Command::new("redis-cli")
        .args(["-p", &r.port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut script = String::new();
    for i in 0..40 {
        script.push_str(&format!("SET user:{i} v{i}\n"));
    }
    script.push_str("HSET other f v\nGET user:7\nHGET other f\nDBSIZE\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 44, "{text}");
    assert!(lines[..40].iter().all(|l| *l == "OK"), "{text}");
    assert_eq!(&lines[40..], ["1", "v7", "v", "41"]);

    let scanned = redis_cli(r.port, &["--scan", "--pattern", "user:*"]);
    let mut keys: Vec<&str> = scanned.lines().collect();
    keys.sort_unstable();
    keys.dedup();
    let mut want: Vec<String> = (0..40).map(|i| format!("user:{i}")).collect();
    want.sort_unstable();
    assert_eq!(keys, want);
    let all = redis_cli(r.port, &["--scan"]);
    assert_eq!(all.lines().count(), 41, "{all}");
}

#[test]
fn redis_benchmark_completes_without_errors() {
    require_tool("redis-benchmark");
    let r = Rudis::start(&["--appendonly", "no", "--workers", "50"]);
    let out = Command::new("redis-benchmark")
        .args(["-p", &r.port.to_string()])
        .args(["-t", "ping_inline,ping_mbulk,set,get,incr,mset,hset"])
        .args(["-n", "20000", "-c", "50", "-q"])
        .output()
        .expect("run redis-benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // -q prints progress with \r and one final line per test.
    let finals: Vec<&str> = stdout
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .collect();
    for t in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "HSET",
        "MSET",
    ] {
        assert!(
            finals.iter().any(|l| l.trim_start().starts_with(t)),
            "no result for {t}:\n{stdout}"
        );
    }
    let lower = format!("{stdout}{stderr}").to_lowercase();
    assert!(!lower.contains("error"), "{stdout}\n{stderr}");
    assert!(!r.log().contains("max number of clients"), "{}", r.log());
}
