//! Issue 13's Pub/Sub targets, against rudis and a real redis-server side by side:
//!
//!   cargo bench --bench pubsub -- [fanout] [channels] [idle] [--secs 10] [--rounds 1]
//!                                 [--workers W]
//!
//! fanout    1,000 subscribers of one channel, 1 publisher of 100-byte messages for SECS s,
//!           PIPELINE PUBLISHes at a time, at most WINDOW messages ahead of what a checking
//!           subscriber has received (no server is measured by how far its output buffers
//!           grow before the limit closes subscribers). Reported: messages delivered per second
//!           (every subscriber's together), whether every subscriber got every message, and
//!           whether the checking subscribers got them in order.
//! channels  10,000 channels with 10 subscribers each (1,000 connections of 100 channels), 10
//!           publishers each publishing to random channels one PUBLISH at a time for SECS s.
//!           Reported: publishes and deliveries per second, PUBLISH latency p50 and p99.
//! idle      10,000 connections, each subscribed to its own channel, held SECS s: the server's
//!           CPU seconds meanwhile and its RSS growth per subscriber.
//!
//! The subscribers are read by two epoll threads of this process (Python could not read them
//! as fast as a server writes). On a small shared machine the clients compete with the server
//! for the CPU, the same for both servers: read the ratios, not the absolute figures.
//! Needs redis-server; rudis is target/release/rudis-server (`cargo build --release`).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAYLOAD: usize = 100;
const WINDOW: u64 = 1000;
/// PUBLISHes the fan-out publisher sends before it reads their replies.
const PIPELINE: u64 = 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("{seq:010}").into_bytes();
    p.resize(PAYLOAD, b'x');
    p
}

fn frame_len(channel: &[u8]) -> u64 {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{}\r\n${PAYLOAD}\r\n{}\r\n",
        channel.len(),
        String::from_utf8_lossy(channel),
        "x".repeat(PAYLOAD)
    )
    .len() as u64
}

struct Server {
    kind: &'static str,
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(kind: &'static str, workers: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let common = [
            "--port".to_string(),
            port.to_string(),
            "--appendonly".into(),
            "no".into(),
            "--maxclients".into(),
            "20000".into(),
            "--dir".into(),
            dir.path().display().to_string(),
        ];
        let mut c = if kind == "redis" {
            let mut c = Command::new("redis-server");
            c.args(["--save", "", "--logfile"])
                .arg(dir.path().join("log"));
            c
        } else {
            let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/rudis-server");
            let mut c = Command::new(bin);
            c.args(["--loglevel", "warning"]);
            if let Some(w) = workers {
                c.args(["--workers", w]);
            }
            c
        };
        let child = c
            .args(common)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {kind}: {e}"));
        // Owned at once: a server that never answers is killed as the panic drops it.
        let server = Server {
            kind,
            port,
            child,
            _dir: dir,
        };
        for _ in 0..200 {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let mut b = [0u8; 16];
                if s.write_all(&encode(&[b"PING"])).is_ok()
                    && s.read(&mut b).is_ok_and(|n| b[..n].starts_with(b"+PONG"))
                {
                    return server;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{kind} did not start");
    }

    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let f: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tck
    }

    fn rss_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection subscribed to `chans`, its confirmations read.
fn subscribe(port: u16, chans: &[Vec<u8>]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
    args.extend(chans.iter().map(|c| c.as_slice()));
    s.write_all(&encode(&args)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while buf.windows(11).filter(|w| w == b"subscribe\r\n").count() < chans.len() {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed while subscribing");
        buf.extend_from_slice(&chunk[..n]);
    }
    s.set_nonblocking(true).unwrap();
    s
}

struct ReadResult {
    counts: Vec<u64>,
    in_order: bool,
    closed: usize,
}

/// Reads `socks` through epoll until `stop` and half a second of quiet, counting bytes; with
/// `progress`, the first one's messages are parsed: their sequence numbers must follow on.
fn read_all(
    mut socks: Vec<TcpStream>,
    stop: Arc<AtomicBool>,
    progress: Option<Arc<AtomicU64>>,
) -> ReadResult {
    // SAFETY: plain syscalls on descriptors this function owns for its whole run.
    let ep = unsafe { libc::epoll_create1(0) };
    for (i, s) in socks.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: as above.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
    }
    let mut counts = vec![0u64; socks.len()];
    let mut open = vec![true; socks.len()];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    let mut buf = vec![0u8; 1 << 20];
    let (mut pending, mut expect, mut in_order, mut closed) = (Vec::new(), 0u64, true, 0);
    let mut quiet_since: Option<Instant> = None;
    loop {
        // SAFETY: `events` has room for its length.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 100) };
        if n <= 0 {
            if stop.load(Ordering::Relaxed) {
                let q = *quiet_since.get_or_insert_with(Instant::now);
                if q.elapsed() > Duration::from_millis(500) {
                    break;
                }
            }
            continue;
        }
        quiet_since = None;
        for ev in &events[..n as usize] {
            let i = ev.u64 as usize;
            if !open[i] {
                continue;
            }
            loop {
                let got = match socks[i].read(&mut buf) {
                    Ok(0) => None,
                    Ok(got) => Some(got),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => None,
                };
                let Some(got) = got else {
                    open[i] = false;
                    closed += 1;
                    // SAFETY: as above.
                    unsafe {
                        libc::epoll_ctl(
                            ep,
                            libc::EPOLL_CTL_DEL,
                            socks[i].as_raw_fd(),
                            std::ptr::null_mut(),
                        )
                    };
                    break;
                };
                counts[i] += got as u64;
                if i == 0 {
                    if let Some(p) = &progress {
                        pending.extend_from_slice(&buf[..got]);
                        let head = format!("${PAYLOAD}\r\n").into_bytes();
                        let mut at = 0;
                        while let Some(j) =
                            pending[at..].windows(head.len()).position(|w| w == head)
                        {
                            let start = at + j + head.len();
                            if pending.len() < start + PAYLOAD {
                                break;
                            }
                            let seq: u64 = std::str::from_utf8(&pending[start..start + 10])
                                .unwrap()
                                .parse()
                                .unwrap();
                            in_order &= seq == expect;
                            expect = seq + 1;
                            at = start + PAYLOAD;
                        }
                        pending.drain(..at);
                        p.store(expect, Ordering::Release);
                    }
                }
            }
        }
    }
    // SAFETY: closes the epoll descriptor made above.
    unsafe { libc::close(ep) };
    socks.clear();
    ReadResult {
        counts,
        in_order,
        closed,
    }
}

fn spawn_readers(
    groups: Vec<Vec<TcpStream>>,
    stop: &Arc<AtomicBool>,
    progress: Option<Arc<AtomicU64>>,
) -> Vec<std::thread::JoinHandle<ReadResult>> {
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let stop = stop.clone();
            let p = if i == 0 { progress.clone() } else { None };
            std::thread::spawn(move || read_all(g, stop, p))
        })
        .collect()
}

fn join(readers: Vec<std::thread::JoinHandle<ReadResult>>) -> ReadResult {
    let mut all = ReadResult {
        counts: Vec::new(),
        in_order: true,
        closed: 0,
    };
    for r in readers {
        let r = r.join().unwrap();
        all.counts.extend(r.counts);
        all.in_order &= r.in_order;
        all.closed += r.closed;
    }
    all
}

type Figures = Vec<(&'static str, f64, bool)>;

fn fanout(s: &Server, secs: f64) -> Figures {
    let channel = b"fanout".to_vec();
    let groups: Vec<Vec<TcpStream>> = (0..2)
        .map(|_| {
            (0..500)
                .map(|_| subscribe(s.port, std::slice::from_ref(&channel)))
                .collect()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let readers = spawn_readers(groups, &stop, Some(progress.clone()));
    let mut publisher = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    publisher.set_nodelay(true).unwrap();
    let (cpu0, t0) = (s.cpu(), Instant::now());
    let mut seq = 0u64;
    let mut replies_ok = true;
    let mut reply = [0u8; 64];
    let want = b":1000\r\n";
    while t0.elapsed().as_secs_f64() < secs {
        while seq + PIPELINE - progress.load(Ordering::Acquire) > WINDOW {
            std::hint::spin_loop();
        }
        // PIPELINE PUBLISHes at a time, as a client publishing as fast as it can does.
        let mut batch = Vec::new();
        for k in 0..PIPELINE {
            batch.extend(encode(&[b"PUBLISH", &channel, &payload(seq + k)]));
        }
        publisher.write_all(&batch).unwrap();
        let mut got = Vec::new();
        while got.len() < want.len() * PIPELINE as usize {
            let n = publisher.read(&mut reply).unwrap();
            assert!(n > 0, "publisher closed");
            got.extend_from_slice(&reply[..n]);
        }
        replies_ok &= got.chunks(want.len()).all(|r| r == want);
        seq += PIPELINE;
    }
    while progress.load(Ordering::Acquire) < seq && t0.elapsed().as_secs_f64() < secs + 30.0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = s.cpu() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let r = join(readers);
    let frame = frame_len(&channel);
    let delivered: u64 = r.counts.iter().sum::<u64>() / frame;
    let complete = replies_ok && r.counts.iter().all(|&c| c == seq * frame);
    vec![
        ("published", seq as f64, true),
        ("delivered/s", delivered as f64 / elapsed, true),
        ("server cpu s", cpu, false),
        ("all received", complete as u8 as f64, true),
        ("in order", r.in_order as u8 as f64, true),
        ("closed", r.closed as f64, false),
    ]
}

fn channels(s: &Server, secs: f64) -> Figures {
    let groups: Vec<Vec<TcpStream>> = (0..2)
        .map(|g| {
            (0..500)
                .map(|i| {
                    let conn = g * 500 + i;
                    let chans: Vec<Vec<u8>> = (0..100)
                        .map(|j| format!("ch:{}", (conn * 100 + j) % 10000).into_bytes())
                        .collect();
                    subscribe(s.port, &chans)
                })
                .collect()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let readers = spawn_readers(groups, &stop, None);
    let (cpu0, t0) = (s.cpu(), Instant::now());
    let port = s.port;
    let pubs: Vec<_> = (0..10u64)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_nodelay(true).unwrap();
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (p + 1);
                let body = payload(p);
                let mut lat = Vec::new();
                let mut reply = [0u8; 64];
                while t0.elapsed().as_secs_f64() < secs {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let ch = format!("ch:{}", rng % 10000);
                    let t = Instant::now();
                    c.write_all(&encode(&[b"PUBLISH", ch.as_bytes(), &body]))
                        .unwrap();
                    let n = c.read(&mut reply).unwrap();
                    assert_eq!(&reply[..n], b":10\r\n");
                    lat.push(t.elapsed().as_micros() as u32);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<u32> = pubs.into_iter().flat_map(|p| p.join().unwrap()).collect();
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = s.cpu() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let r = join(readers);
    lat.sort_unstable();
    let frame = frame_len(b"ch:1234");
    vec![
        ("publishes/s", lat.len() as f64 / elapsed, true),
        (
            "deliveries/s",
            (r.counts.iter().sum::<u64>() / frame) as f64 / elapsed,
            true,
        ),
        ("p50 us", lat[lat.len() / 2] as f64, false),
        ("p99 us", lat[lat.len() * 99 / 100] as f64, false),
        ("server cpu s", cpu, false),
        ("closed", r.closed as f64, false),
    ]
}

fn idle(s: &Server, secs: f64) -> Figures {
    let rss0 = s.rss_kb();
    let socks: Vec<TcpStream> = (0..10000)
        .map(|i| subscribe(s.port, &[format!("idle:{i}").into_bytes()]))
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let rss1 = s.rss_kb();
    let cpu0 = s.cpu();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let cpu = s.cpu() - cpu0;
    drop(socks);
    vec![
        ("server cpu s", cpu, false),
        (
            "bytes/subscriber",
            (rss1.saturating_sub(rss0) * 1024) as f64 / 10000.0,
            false,
        ),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let secs: f64 = opt("--secs").map_or(10.0, |s| s.parse().unwrap());
    let rounds: usize = opt("--rounds").map_or(1, |s| s.parse().unwrap());
    let workers = opt("--workers");
    let mut parts: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["fanout", "channels", "idle"].contains(a))
        .collect();
    if parts.is_empty() {
        parts = vec!["fanout", "channels", "idle"];
    }
    let lim = libc::rlimit {
        rlim_cur: 40000,
        rlim_max: 40000,
    };
    // SAFETY: setrlimit reads the struct it is given; failure leaves the old limit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    for part in parts {
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                ["redis", "rudis"]
            } else {
                ["rudis", "redis"]
            };
            let mut res = std::collections::HashMap::new();
            for kind in order {
                let s = Server::start(kind, workers.as_deref());
                let f = match part {
                    "fanout" => fanout(&s, secs),
                    "channels" => channels(&s, secs),
                    _ => idle(&s, secs),
                };
                res.insert(s.kind, f);
            }
            println!("{part} (round {})", round + 1);
            for (i, (name, a, high)) in res["redis"].iter().enumerate() {
                let b = res["rudis"][i].1;
                let ratio = if *a > 0.0 && b > 0.0 {
                    format!("ratio {:.2}", if *high { b / a } else { a / b })
                } else {
                    String::new()
                };
                println!("  {name:<18} redis {a:<14.1} rudis {b:<14.1} {ratio}");
            }
        }
    }
}
