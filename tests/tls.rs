//! TLS against the real binary, with certificates the openssl CLI makes for each test: real
//! clients (redis-cli --tls, redis-py with ssl=True) connect; client certificates are
//! required, optional or not asked for; an expired certificate or one from another CA is
//! refused; a plain-TCP client on the TLS port is dropped without disturbing TLS clients;
//! certificates are reloaded by CONFIG SET.

mod common;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{free_port, Raw, Rudis};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI makes these tests' certificates: apt-get install -y openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`name`.crt/.key) and certificates it signs.
struct Certs {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        common::require_tool("openssl");
        let tmp = tempfile::tempdir().unwrap();
        let c = Certs {
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
        };
        c.ca("ca");
        c.ca("other-ca");
        c.sign(
            "server",
            "ca",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "30",
        );
        c.sign("client", "ca", "extendedKeyUsage=clientAuth", "30");
        c.sign("expired", "ca", "extendedKeyUsage=clientAuth", "-1");
        c.sign("stranger", "other-ca", "extendedKeyUsage=clientAuth", "30");
        c
    }

    /// A new P-256 key `name`.key and, with `then`, what `openssl req` makes of it.
    fn key_and(&self, name: &str, then: &[&str]) {
        let (key, subj) = (format!("{name}.key"), format!("/CN={name}"));
        let mut args = vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ];
        args.extend(["-nodes", "-keyout", &key, "-subj", &subj]);
        args.extend(then);
        openssl(&self.dir, &args);
    }

    fn ca(&self, name: &str) {
        let crt = format!("{name}.crt");
        self.key_and(name, &["-x509", "-days", "30", "-out", &crt]);
    }

    fn sign(&self, name: &str, ca: &str, ext: &str, days: &str) {
        std::fs::write(self.dir.join(format!("{name}.ext")), ext).unwrap();
        let csr = format!("{name}.csr");
        self.key_and(name, &["-out", &csr]);
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-set_serial",
                "7",
                "-days",
                days,
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_string()
    }

    /// The flags of a TLS port with the server's certificate, for rudis and redis-server.
    fn server_flags(&self, tls_port: u16) -> Vec<String> {
        vec![
            "--tls-port".to_string(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            self.path("server.crt"),
            "--tls-key-file".into(),
            self.path("server.key"),
        ]
    }

    /// rudis with a TLS port beside its plain one.
    fn rudis(&self, tls_port: u16, extra: &[&str]) -> Rudis {
        let mut args = self.server_flags(tls_port);
        args.extend([
            "--tls-ca-cert-file".into(),
            self.path("ca.crt"),
            "--appendonly".into(),
            "no".into(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Rudis::start(&args)
    }

    /// redis-cli --tls, with the client certificate `cert` if given: its output, or its
    /// error.
    fn cli(&self, port: u16, cert: Option<&str>, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args([
            "--tls",
            "--cacert",
            &self.path("ca.crt"),
            "-p",
            &port.to_string(),
        ]);
        if let Some(c) = cert {
            cmd.args([
                "--cert",
                &self.path(&format!("{c}.crt")),
                "--key",
                &self.path(&format!("{c}.key")),
            ]);
        }
        let out = cmd.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

/// A TLS client connection that stays open across the test (redis-cli's runs one command).
type TlsClient = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

impl Certs {
    /// A TLS connection trusting ca.crt, without a client certificate; Err when the port
    /// refuses it or the handshake fails.
    fn connect(&self, port: u16) -> std::io::Result<TlsClient> {
        connect_with(&self.client_config(), port)
    }

    /// A client configuration trusting ca.crt; connections made with one resume its sessions.
    fn client_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(self.path("ca.crt")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        std::sync::Arc::new(config)
    }
}

fn connect_with(
    config: &std::sync::Arc<rustls::ClientConfig>,
    port: u16,
) -> std::io::Result<TlsClient> {
    {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn =
            rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(s)
    }
}

/// rudis on a TLS port (returned) that asks for no client certificate.
fn without_client_certificates() -> (Certs, u16, Rudis) {
    let certs = Certs::new();
    let port = free_port();
    let r = certs.rudis(port, &["--tls-auth-clients", "no"]);
    (certs, port, r)
}

/// tls-protocols, tls-ciphers / tls-ciphersuites, the certificate and the session cache
/// settings changed by CONFIG SET apply to new handshakes; a connection made before goes on.
#[test]
fn tls_settings_change_at_run_time() {
    use rustls::HandshakeKind::{Full, Resumed};
    let (certs, port, r) = without_client_certificates();
    let mut admin = r.raw();
    let mut old = certs.connect(port).unwrap();
    assert_eq!(
        old.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let suite = |s: &TlsClient| s.conn.negotiated_cipher_suite().unwrap().suite();
    let set = |admin: &mut Raw, args: &[&str]| {
        let mut cmd = vec!["CONFIG", "SET"];
        cmd.extend(args);
        assert_eq!(admin.cmd(&cmd), b"+OK\r\n", "{args:?}");
    };

    set(
        &mut admin,
        &[
            "tls-protocols",
            "TLSv1.2",
            "tls-ciphers",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
        ],
    );
    let new = certs.connect(port).unwrap();
    assert_eq!(
        new.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        suite(&new),
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    );
    set(
        &mut admin,
        &[
            "tls-protocols",
            "TLSv1.3",
            "tls-ciphersuites",
            "TLS_CHACHA20_POLY1305_SHA256",
        ],
    );
    let new = certs.connect(port).unwrap();
    assert_eq!(
        suite(&new),
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    );
    assert_eq!(tls_cmd(&mut old, &["PING"]), b"+PONG\r\n");

    // Sessions resume from the cache while they are younger than the timeout; with
    // caching off, never.
    let client = certs.client_config();
    let handshakes = |n: usize| -> Vec<rustls::HandshakeKind> {
        (0..n)
            .map(|_| {
                let mut c = connect_with(&client, port).unwrap();
                // TLS 1.3 sends the session after the handshake: a reply reads it.
                assert_eq!(tls_cmd(&mut c, &["PING"]), b"+PONG\r\n");
                c.conn.handshake_kind().unwrap()
            })
            .collect()
    };
    assert_eq!(handshakes(3)[1..], [Resumed, Resumed]);
    set(&mut admin, &["tls-session-cache-timeout", "1"]);
    assert_eq!(handshakes(2), [Full, Resumed]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(handshakes(1), [Full]);
    set(&mut admin, &["tls-session-caching", "no"]);
    assert_eq!(handshakes(3), [Full, Full, Full]);

    // A certificate from another CA: new handshakes (trusting the first CA only) fail, the
    // old connection goes on; the first certificate back, they succeed again.
    certs.sign("server2", "other-ca", "subjectAltName=IP:127.0.0.1", "30");
    let (crt, key) = (certs.path("server2.crt"), certs.path("server2.key"));
    set(&mut admin, &["tls-cert-file", &crt, "tls-key-file", &key]);
    assert!(certs.connect(port).is_err());
    assert_eq!(tls_cmd(&mut old, &["PING"]), b"+PONG\r\n");
    let (crt, key) = (certs.path("server.crt"), certs.path("server.key"));
    set(&mut admin, &["tls-cert-file", &crt, "tls-key-file", &key]);
    assert_eq!(
        tls_cmd(&mut certs.connect(port).unwrap(), &["PING"]),
        b"+PONG\r\n"
    );
}

/// One command over a TLS connection: the reply's first read (these replies are short).
fn tls_cmd(s: &mut TlsClient, args: &[&str]) -> Vec<u8> {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// The same script over TLS to redis-server and to rudis, after HELLO 2 and after HELLO 3:
/// the reply bytes (all but HELLO's, which hold ids and versions) must be the same. The
/// scripts are tests/diff's strings and lists, their plain command lines, as inline commands.
#[test]
fn the_same_bytes_as_redis_over_tls() {
    let (certs, port, _rudis) = without_client_certificates();
    let redis_tls = free_port();
    let mut flags = certs.server_flags(redis_tls);
    flags.extend(["--tls-auth-clients".into(), "no".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let _redis = common::RealRedis::start(&flags);
    let mut script = Vec::new();
    for name in ["strings", "lists"] {
        let path = format!("{}/tests/diff/{name}.txt", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines().map(str::trim) {
            if !(line.is_empty() || line.starts_with(['#', '!', '~', '%', '@', '^', '*'])) {
                script.push(format!("{line}\r\n"));
            }
        }
    }
    assert!(script.len() > 200, "{} lines", script.len());
    let client = certs.client_config();
    /// One reply: read until the buffer holds a whole frame.
    fn reply(c: &mut TlsClient) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            if let Some((_, n)) = rudis::resp::Frame::parse(&out).expect("RESP") {
                assert_eq!(n, out.len(), "one reply at a time");
                return out;
            }
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {}", common::show(&out));
            out.extend_from_slice(&buf[..n]);
        }
    }
    for protocol in [2, 3] {
        let mut redis = connect_with(&client, redis_tls).unwrap();
        let mut ours = connect_with(&client, port).unwrap();
        // Line by line, both at once: TTLs read the same second.
        let mut compared = 0;
        for line in [format!("HELLO {protocol}\r\n"), "FLUSHALL\r\n".into()]
            .iter()
            .chain(&script)
        {
            let line = line.replace("{proto}", &protocol.to_string());
            redis.write_all(line.as_bytes()).unwrap();
            ours.write_all(line.as_bytes()).unwrap();
            let (want, got) = (reply(&mut redis), reply(&mut ours));
            if !line.starts_with("HELLO") {
                assert_eq!(
                    common::show(&got),
                    common::show(&want),
                    "RESP{protocol}: {line}"
                );
                compared += 1;
            }
        }
        assert!(compared > 200);
    }
}

/// `tls-replication yes`: a rudis replica follows a redis-server master on its TLS port
/// (full sync, then the stream), showing its certificate to the master that asks for one:
/// its tls-cert-file, having no tls-client-cert-file (Redis's unit/tls). The master's
/// certificate names neither 127.0.0.1 nor anything else: as Redis, the replica checks its
/// chain, not a host name.
#[test]
fn a_replica_follows_its_master_over_tls() {
    let certs = Certs::new();
    certs.sign("nameless", "ca", "basicConstraints=CA:FALSE", "30");
    let master_tls = free_port();
    let mut flags: Vec<String> = certs
        .server_flags(master_tls)
        .into_iter()
        .map(|f| f.replace("server.", "nameless."))
        .collect();
    flags.extend(["--tls-ca-cert-file".into(), certs.path("ca.crt")]);
    flags.extend(["--repl-diskless-sync-delay".into(), "0".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let master = common::RealRedis::start(&flags);
    let mut m = master.raw();
    assert_eq!(m.cmd(&["SET", "before", "1"]), b"+OK\r\n");
    let replica = certs.rudis(
        free_port(),
        &[
            "--replicaof",
            "127.0.0.1",
            &master_tls.to_string(),
            "--tls-replication",
            "yes",
        ],
    );
    assert_eq!(m.cmd(&["SET", "after", "2"]), b"+OK\r\n");
    let mut r = replica.raw();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while r.cmd(&["GET", "after"]) != b"$1\r\n2\r\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "no sync over TLS: {}",
            replica.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(r.cmd(&["GET", "before"]), b"$1\r\n1\r\n");
    let info = String::from_utf8(r.cmd(&["INFO", "replication"])).unwrap();
    assert!(info.contains("master_link_status:up"), "{info}");
}

/// CONFIG SET port / tls-port move the listeners at run time, as Redis 7 does: the new port
/// serves, the old one no longer does, connections already open go on; a port in use is
/// Redis's error (the same bytes as redis-server's) and the old port keeps serving.
#[test]
fn config_set_moves_the_port_and_the_tls_port() {
    let (certs, tls_port, r) = without_client_certificates();
    let mut plain = r.raw();
    let mut tls = certs.connect(tls_port).unwrap();
    assert_eq!(tls_cmd(&mut tls, &["SET", "k", "v"]), b"+OK\r\n");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let redis = common::RealRedis::start(&[]);
    let refused = |name: &str| {
        format!(
            "-ERR CONFIG SET failed (possibly related to argument '{name}') - Unable to listen \
             on this port. Check server logs.\r\n"
        )
        .into_bytes()
    };
    let theirs = redis.raw().cmd(&["CONFIG", "SET", "port", &busy_port]);
    assert_eq!(common::show(&theirs), common::show(&refused("port")));
    let ours = plain.cmd(&["CONFIG", "SET", "port", &busy_port]);
    assert_eq!(common::show(&ours), common::show(&theirs));
    let ours = plain.cmd(&["CONFIG", "SET", "tls-port", &busy_port]);
    assert_eq!(common::show(&ours), common::show(&refused("tls-port")));
    let port = r.port.to_string();
    assert_eq!(
        plain.cmd(&["CONFIG", "GET", "port"]),
        format!("*2\r\n$4\r\nport\r\n${}\r\n{port}\r\n", port.len()).into_bytes()
    );
    assert_eq!(Raw::connect(r.port).cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(
        tls_cmd(&mut certs.connect(tls_port).unwrap(), &["PING"]),
        b"+PONG\r\n"
    );

    // Both move in one CONFIG SET.
    let (new_port, new_tls) = (free_port(), free_port());
    assert_eq!(
        plain.cmd(&[
            "CONFIG",
            "SET",
            "port",
            &new_port.to_string(),
            "tls-port",
            &new_tls.to_string()
        ]),
        b"+OK\r\n"
    );
    assert_eq!(Raw::connect(new_port).cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    let mut moved = certs.connect(new_tls).unwrap();
    assert_eq!(tls_cmd(&mut moved, &["GET", "k"]), b"$1\r\nv\r\n");
    assert!(std::net::TcpStream::connect(("127.0.0.1", r.port)).is_err());
    assert!(certs.connect(tls_port).is_err());
    // The connections made before are untouched.
    assert_eq!(plain.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(tls_cmd(&mut tls, &["GET", "k"]), b"$1\r\nv\r\n");

    // tls-port 0 closes the TLS port; setting one again opens it.
    assert_eq!(plain.cmd(&["CONFIG", "SET", "tls-port", "0"]), b"+OK\r\n");
    assert!(certs.connect(new_tls).is_err());
    assert_eq!(tls_cmd(&mut moved, &["PING"]), b"+PONG\r\n");
    assert_eq!(
        plain.cmd(&["CONFIG", "SET", "tls-port", &new_tls.to_string()]),
        b"+OK\r\n"
    );
    assert_eq!(
        tls_cmd(&mut certs.connect(new_tls).unwrap(), &["PING"]),
        b"+PONG\r\n"
    );
    drop(busy);
}

#[test]
fn client_certificates_required_optional_and_off() {
    common::require_tool("redis-cli");
    let certs = Certs::new();
    let port = free_port();
    let r = certs.rudis(port, &[]);
    // Required (Redis's default): a client certificate from the CA gets in, others do not.
    assert_eq!(certs.cli(port, Some("client"), &["PING"]).trim(), "PONG");
    for refused in [None, Some("expired"), Some("stranger")] {
        let out = certs.cli(port, refused, &["PING"]);
        assert!(!out.contains("PONG"), "{refused:?}: {out}");
    }
    // Data written over TLS is the same data the plain port sees.
    assert_eq!(
        certs
            .cli(port, Some("client"), &["SET", "k", "over tls"])
            .trim(),
        "OK"
    );
    assert_eq!(r.raw().cmd(&["GET", "k"]), b"$8\r\nover tls\r\n");
    // Optional: none is fine, a bad one is still refused.
    let mut admin = r.raw();
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "tls-auth-clients", "optional"]),
        b"+OK\r\n"
    );
    assert_eq!(certs.cli(port, None, &["PING"]).trim(), "PONG");
    assert_eq!(certs.cli(port, Some("client"), &["PING"]).trim(), "PONG");
    assert!(!certs
        .cli(port, Some("stranger"), &["PING"])
        .contains("PONG"));
    // Off: no certificate is asked for.
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "tls-auth-clients", "no"]),
        b"+OK\r\n"
    );
    assert_eq!(certs.cli(port, None, &["PING"]).trim(), "PONG");
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "tls-auth-clients"]),
        b"*2\r\n$16\r\ntls-auth-clients\r\n$2\r\nno\r\n"
    );
}

#[test]
fn redis_py_connects_with_ssl() {
    let certs = Certs::new();
    let port = free_port();
    let _r = certs.rudis(port, &["--tls-auth-clients", "optional"]);
    let script = format!(
        "import redis\n\
         r = redis.Redis(host='127.0.0.1', port={port}, ssl=True, ssl_ca_certs='{ca}', \
         ssl_certfile='{crt}', ssl_keyfile='{key}', protocol=3)\n\
         r.set('py', 'x' * 4000000)\n\
         p = r.pipeline(transaction=False)\n\
         for i in range(10): p.get('py')\n\
         big = all(len(v) == 4000000 for v in p.execute())\n\
         print(r.ping(), big, 'resp=3' in str(r.execute_command('CLIENT', 'INFO')))\n",
        ca = certs.path("ca.crt"),
        crt = certs.path("client.crt"),
        key = certs.path("client.key"),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True True True",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plain_tcp_on_the_tls_port_is_dropped_alone() {
    common::require_tool("redis-cli");
    let certs = Certs::new();
    let port = free_port();
    let r = certs.rudis(port, &["--tls-auth-clients", "no"]);
    // A TLS client that stays connected throughout, with a pipeline in flight.
    let mut tls = Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            &certs.path("ca.crt"),
            "-p",
            &port.to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = tls.stdin.take().unwrap();
    writeln!(stdin, "SET before 1").unwrap();
    // Plain RESP on the TLS port: not a TLS record, so the connection is closed.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    // Not a byte comes back, as from Redis (OpenSSL sends no alert to a peer that does not
    // speak TLS, and a client reading one would take it for a reply).
    assert!(got.is_empty(), "{got:?}");
    writeln!(stdin, "INCR before").unwrap();
    drop(stdin);
    let out = tls.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n2\n");
    // The server serves on both ports still.
    assert_eq!(r.raw().cmd(&["GET", "before"]), b"$1\r\n2\r\n");
    assert_eq!(certs.cli(port, None, &["PING"]).trim(), "PONG");
}

#[test]
fn certificates_reload_and_bad_settings_are_refused() {
    common::require_tool("redis-cli");
    let certs = Certs::new();
    let port = free_port();
    let r = certs.rudis(port, &["--tls-auth-clients", "no"]);
    let mut admin = r.raw();
    // A certificate that does not exist leaves the old settings in force.
    let reply = admin.cmd(&["CONFIG", "SET", "tls-cert-file", "/nonexistent.crt"]);
    assert_eq!(
        reply,
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to \
          update TLS configuration. Check server logs.\r\n"
    );
    assert_eq!(certs.cli(port, None, &["PING"]).trim(), "PONG");
    // A new certificate from another CA: clients trusting only the old CA now refuse it.
    certs.sign("server2", "other-ca", "subjectAltName=IP:127.0.0.1", "30");
    let (crt, key) = (certs.path("server2.crt"), certs.path("server2.key"));
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "tls-cert-file", &crt, "tls-key-file", &key]),
        b"+OK\r\n"
    );
    assert!(!certs.cli(port, None, &["PING"]).contains("PONG"));
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "tls-protocols", "SSLv2"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-protocols') - Unable to \
          update TLS configuration. Check server logs.\r\n"
    );
    // TLS-only (`port 0`), with an encrypted PKCS#8 key and TLS 1.3 alone.
    openssl(
        &certs.dir,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            "server.key",
            "-out",
            "enc.key",
            "-passout",
            "pass:sesame",
        ],
    );
    let port = free_port();
    let mut child = Command::new(common::BIN)
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--appendonly",
            "no",
        ])
        .args(["--tls-cert-file", &certs.path("server.crt")])
        .args([
            "--tls-key-file",
            &certs.path("enc.key"),
            "--tls-key-file-pass",
            "sesame",
        ])
        .args(["--tls-auth-clients", "no", "--tls-protocols", "TLSv1.3"])
        .arg("--dir")
        .arg(&certs.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut out = String::new();
    while std::time::Instant::now() < deadline {
        out = certs.cli(port, None, &["PING"]);
        if out.trim() == "PONG" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.trim(), "PONG");
    // A wrong password stops start-up.
    let (ok, err) = common::run_briefly(&[
        "--port",
        &free_port().to_string(),
        "--tls-port",
        &free_port().to_string(),
        "--tls-cert-file",
        &certs.path("server.crt"),
        "--tls-key-file",
        &certs.path("enc.key"),
        "--tls-key-file-pass",
        "wrong",
        "--tls-auth-clients",
        "no",
    ])
    .expect("should exit");
    assert!(!ok && err.contains("Failed to load private key"), "{err}");
    let _ = Raw::connect(r.port);
}
