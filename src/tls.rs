//! TLS, with rustls: Redis's `tls-*` settings turned into a rustls `ServerConfig`, and the
//! transport a session reads and writes, plain or TLS, so that TLS clients live in the same
//! pool and epoll set as the others.
//!
//! Why rustls: a maintained, audited TLS stack in a memory-safe language, on ring's
//! primitives; rudis writes no cryptography of its own. Where rustls has no equivalent of an
//! OpenSSL setting (TLS 1.0/1.1, CBC suites, a session cache timeout), the setting is
//! accepted and the difference logged or documented.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, ServerConnection, SupportedCipherSuite};

use crate::util::net::Socket;

use crate::config::Config;

/// The TLS settings in force: built at start, rebuilt by CONFIG SET of a `tls-*` setting
/// (which reloads the certificates). New connections take the current one.
#[derive(Default)]
pub struct TlsContext {
    current: RwLock<Option<Arc<ServerConfig>>>,
}

impl TlsContext {
    pub fn get(&self) -> Option<Arc<ServerConfig>> {
        self.current.read().clone()
    }

    /// Builds from `c` when TLS is in use (a `tls-port`); Err says why it cannot be, and
    /// leaves the settings in force unchanged.
    pub fn configure(&self, c: &Config) -> Result<(), String> {
        if tls_port(c) == 0 {
            *self.current.write() = None;
            return Ok(());
        }
        let built = build(c)?;
        *self.current.write() = Some(built);
        Ok(())
    }
}

pub fn tls_port(c: &Config) -> u16 {
    get(c, "tls-port").parse().unwrap_or(0)
}

fn get(c: &Config, name: &str) -> String {
    c.get(name).unwrap_or_default()
}

/// True for the settings whose change rebuilds the TLS configuration.
pub fn is_tls_setting(name: &str) -> bool {
    name.len() > 4 && name[..4].eq_ignore_ascii_case("tls-")
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Redis's `tls-*` settings as a rustls server configuration.
pub fn build(c: &Config) -> Result<Arc<ServerConfig>, String> {
    let cert_file = get(c, "tls-cert-file");
    let key_file = get(c, "tls-key-file");
    if cert_file.is_empty() || key_file.is_empty() {
        return Err("Failed to configure TLS: tls-cert-file and tls-key-file are needed".into());
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("Failed to load certificate: {cert_file}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "Failed to load certificate: {cert_file}: no certificate"
        ));
    }
    let key = load_key(&key_file, &get(c, "tls-key-file-pass"))?;

    let mut p = provider();
    p.cipher_suites = cipher_suites(&get(c, "tls-ciphers"), &get(c, "tls-ciphersuites"));
    let versions = protocols(&get(c, "tls-protocols"))?;
    let builder = ServerConfig::builder_with_provider(Arc::new(p.clone()))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure TLS: {e}"))?;

    let auth = get(c, "tls-auth-clients");
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        let roots = load_roots(&get(c, "tls-ca-cert-file"), &get(c, "tls-ca-cert-dir"))?;
        let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(p));
        let v = if auth == "optional" {
            v.allow_unauthenticated()
        } else {
            v
        };
        builder.with_client_cert_verifier(
            v.build()
                .map_err(|e| format!("Failed to configure CA certificate(s): {e}"))?,
        )
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("Failed to load private key: {key_file}: {e}"))?;
    config.ignore_client_order = get(c, "tls-prefer-server-ciphers") == "yes";
    if get(c, "tls-session-caching") == "yes" {
        let size = get(c, "tls-session-cache-size")
            .parse()
            .unwrap_or(20480usize);
        let timeout = get(c, "tls-session-cache-timeout")
            .parse()
            .unwrap_or(300u64);
        config.session_storage = Arc::new(TimedSessions {
            cache: ServerSessionMemoryCache::new(size.max(1)),
            timeout_ms: timeout.saturating_mul(1000),
        });
    } else {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(Arc::new(config))
}

/// `tls-session-cache-timeout` over rustls's cache, which evicts by size only: each session
/// is stored behind the time it was made, and one older than the timeout is not resumed (it
/// leaves when the size evicts it), as OpenSSL's session timeout.
#[derive(Debug)]
struct TimedSessions {
    cache: Arc<ServerSessionMemoryCache>,
    timeout_ms: u64,
}

impl TimedSessions {
    fn fresh(&self, stored: Option<Vec<u8>>) -> Option<Vec<u8>> {
        let stored = stored?;
        let (born, value) = stored.split_first_chunk::<8>()?;
        let age = crate::util::clock::now_ms().saturating_sub(u64::from_le_bytes(*born));
        (age < self.timeout_ms).then(|| value.to_vec())
    }
}

impl rustls::server::StoresServerSessions for TimedSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut stored = crate::util::clock::now_ms().to_le_bytes().to_vec();
        stored.extend_from_slice(&value);
        self.cache.put(key, stored)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.fresh(self.cache.get(key))
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.fresh(self.cache.take(key))
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// The private key: PKCS#8, PKCS#1 or SEC1 PEM, or an encrypted PKCS#8 one (`ENCRYPTED
/// PRIVATE KEY`, PBES2, as `openssl pkcs8 -topk8` writes) opened with `tls-key-file-pass`.
fn load_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("Failed to load private key: {path}: {e}");
    let text = std::fs::read(path).map_err(|e| fail(&crate::util::strerror(&e)))?;
    let text_str = String::from_utf8_lossy(&text);
    if text_str.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        use pkcs8::der::Decode;
        let (_, doc) = pkcs8::SecretDocument::from_pem(&text_str).map_err(|e| fail(&e))?;
        let info =
            pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).map_err(|e| fail(&e))?;
        let plain = info
            .decrypt(pass.as_bytes())
            .map_err(|_| fail(&"wrong tls-key-file-pass, or an unsupported encryption"))?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    if text_str.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(fail(
            &"a legacy OpenSSL-encrypted key is not supported: convert it to encrypted PKCS#8 \
              (openssl pkcs8 -topk8 -v2 aes-256-cbc)",
        ));
    }
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| fail(&e))
}

fn load_roots(file: &str, dir: &str) -> Result<RootCertStore, String> {
    if file.is_empty() && dir.is_empty() {
        return Err(
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when \
                    tls-cluster, tls-replication or tls-auth-clients are enabled!"
                .into(),
        );
    }
    let mut roots = RootCertStore::empty();
    let mut add = |path: &std::path::Path, strict: bool| -> Result<(), String> {
        let fail = |e: &dyn std::fmt::Display| {
            format!(
                "Failed to configure CA certificate(s) file/directory: {}: {e}",
                path.display()
            )
        };
        let certs = match CertificateDer::pem_file_iter(path) {
            Ok(it) => it,
            Err(e) if strict => return Err(fail(&e)),
            Err(_) => return Ok(()),
        };
        for cert in certs {
            match cert {
                Ok(cert) => roots.add(cert).map_err(|e| fail(&e))?,
                Err(e) if strict => return Err(fail(&e)),
                Err(_) => {}
            }
        }
        Ok(())
    };
    if !file.is_empty() {
        add(std::path::Path::new(file), true)?;
    }
    if !dir.is_empty() {
        // OpenSSL reads the directory's hashed names; every certificate file in it is read.
        let entries = std::fs::read_dir(dir).map_err(|e| {
            format!(
                "Failed to configure CA certificate(s) file/directory: {dir}: {}",
                crate::util::strerror(&e)
            )
        })?;
        for e in entries.flatten() {
            add(&e.path(), false)?;
        }
    }
    if roots.is_empty() {
        return Err("Failed to configure CA certificate(s) file/directory: no certificate".into());
    }
    Ok(roots)
}

/// `tls-protocols`: Redis's names; rustls has TLS 1.2 and 1.3 only.
fn protocols(s: &str) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    if s.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut out = Vec::new();
    for word in s.split_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1.3" => out.push(&rustls::version::TLS13),
            "tlsv1.2" => out.push(&rustls::version::TLS12),
            "tlsv1" | "tlsv1.1" => {
                log::warn!("tls-protocols: {word} is not offered (rustls has TLS 1.2 and 1.3 only)")
            }
            _ => return Err(format!("Invalid tls-protocols specified: {word}")),
        }
    }
    if out.is_empty() {
        return Err("Failed to configure TLS: tls-protocols names no protocol rustls has".into());
    }
    Ok(out)
}

/// OpenSSL's name for a suite rustls has (TLS 1.3's are the IANA names).
fn openssl_name(s: &SupportedCipherSuite) -> &'static str {
    use rustls::CipherSuite::*;
    match s.suite() {
        TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "",
    }
}

/// `tls-ciphers` (TLS 1.2, an OpenSSL cipher list) and `tls-ciphersuites` (TLS 1.3): the
/// suites named that rustls has, in the order given. Other words (OpenSSL's keywords such as
/// `HIGH` or `!aNULL`, suites rustls lacks) are logged and ignored; a list naming none of
/// rustls's suites leaves that version's defaults.
fn cipher_suites(ciphers: &str, suites13: &str) -> Vec<SupportedCipherSuite> {
    let all = rustls::crypto::ring::ALL_CIPHER_SUITES;
    let pick = |list: &str, tls13: bool| -> Vec<SupportedCipherSuite> {
        let of_version: Vec<SupportedCipherSuite> = all
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)) == tls13)
            .copied()
            .collect();
        if list.trim().is_empty() {
            return of_version;
        }
        let mut out = Vec::new();
        for word in list.split([':', ',', ' ']).filter(|w| !w.is_empty()) {
            match of_version.iter().find(|s| openssl_name(s) == word) {
                Some(s) => out.push(*s),
                None => log::warn!("TLS: '{word}' names no cipher suite rustls has; ignored"),
            }
        }
        if out.is_empty() {
            of_version
        } else {
            out
        }
    };
    let mut out = pick(suites13, true);
    out.extend(pick(ciphers, false));
    out
}

/// A client's byte stream: a plain socket (TCP or Unix), or TLS over TCP. Plain reads and
/// writes are the socket's own; TLS ones go through a non-blocking rustls connection.
pub enum Transport {
    Plain(Socket),
    Tls(Box<TlsStream>),
}

pub struct TlsStream {
    tcp: Socket,
    conn: ServerConnection,
}

impl Transport {
    pub fn tls(tcp: Socket, config: Arc<ServerConfig>) -> io::Result<Transport> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Transport::Tls(Box::new(TlsStream { tcp, conn })))
    }

    pub fn socket(&self) -> &Socket {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &t.tcp,
        }
    }

    /// True when a read may have left decrypted or undecrypted input behind that the socket
    /// will not signal again (edge-triggered epoll): the session reads again.
    #[inline]
    pub fn may_hold_input(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Bytes TLS holds that the socket has not taken yet (records, handshake messages).
    #[inline]
    pub fn holds_output(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.conn.wants_write(),
        }
    }

    /// Writes what TLS holds, as far as the socket takes it.
    pub fn flush_held(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(t) => t.send_records(),
        }
    }
}

impl TlsStream {
    fn send_records(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends what the handshake or an alert produced; a full socket keeps the rest for the
    /// next write step.
    fn send_some(&mut self) -> io::Result<()> {
        match self.send_records() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            r => r,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The peer closed the socket without close_notify: the end, as for TCP.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let n = loop {
                match self.conn.read_tls(&mut self.tcp) {
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    r => break r?,
                }
            };
            if let Err(e) = self.conn.process_new_packets() {
                // The alert rustls queued tells a TLS peer why (a bad certificate). A peer
                // that does not speak TLS at all (a plain client on the TLS port) gets no
                // bytes, only the end, as from Redis: an alert would read as a reply to it.
                let not_tls =
                    self.conn.is_handshaking() && matches!(e, rustls::Error::InvalidMessage(_));
                if !not_tls {
                    let _ = self.send_some();
                }
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
            self.send_some()?;
            if n == 0 {
                return match self.conn.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
                    Err(e) => Err(e),
                };
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Records already made go first; no more plaintext is taken while they wait.
        self.send_records()?;
        let n = self.conn.writer().write(buf)?;
        self.send_some()?;
        if n == 0 && !buf.is_empty() {
            // rustls's buffer is full: the same as a full socket, not the end of the stream.
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}

impl Read for Transport {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Transport {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_held()
    }
}

/// An outgoing link (a replica's to its master): plain TCP, or TLS under `tls-replication`.
/// Blocking, with the socket's own timeouts.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl ClientStream {
    /// TLS to `host` over `tcp` when `tls-replication` is on: the master's certificate must
    /// chain to `tls-ca-cert-file`/`-dir` (whatever names it holds: Redis checks no host
    /// name, and its own test certificates name none); the replica shows
    /// `tls-client-cert-file` (else `tls-cert-file`) when one is set, as Redis's client
    /// context does.
    pub fn replica_link(c: &Config, host: &str, tcp: TcpStream) -> Result<ClientStream, String> {
        if get(c, "tls-replication") != "yes" {
            return Ok(ClientStream::Plain(tcp));
        }
        let roots = load_roots(&get(c, "tls-ca-cert-file"), &get(c, "tls-ca-cert-dir"))?;
        let mut p = provider();
        p.cipher_suites = cipher_suites(&get(c, "tls-ciphers"), &get(c, "tls-ciphersuites"));
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(p))
            .with_protocol_versions(&protocols(&get(c, "tls-protocols"))?)
            .map_err(|e| format!("Failed to configure TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(AnyName::new(roots)?);
        let (mut cert, mut key, mut pass) = (
            get(c, "tls-client-cert-file"),
            get(c, "tls-client-key-file"),
            get(c, "tls-client-key-file-pass"),
        );
        if cert.is_empty() {
            (cert, key, pass) = (
                get(c, "tls-cert-file"),
                get(c, "tls-key-file"),
                get(c, "tls-key-file-pass"),
            );
        }
        let config = if cert.is_empty() || key.is_empty() {
            builder.with_no_client_auth()
        } else {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| format!("Failed to load certificate: {cert}: {e}"))?;
            builder
                .with_client_auth_cert(certs, load_key(&key, &pass)?)
                .map_err(|e| format!("Failed to load private key: {key}: {e}"))?
        };
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("TLS: '{host}': {e}"))?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| format!("TLS: {e}"))?;
        Ok(ClientStream::Tls(Box::new(rustls::StreamOwned::new(
            conn, tcp,
        ))))
    }
}

/// webpki's verification of a master's certificate chain, but for the name it is for (as
/// Redis's OpenSSL context checks the chain and no host name).
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl AnyName {
    fn new(roots: RootCertStore) -> Result<Arc<AnyName>, String> {
        let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(provider()),
        )
        .build()
        .map_err(|e| format!("Failed to configure CA certificate(s): {e}"))?;
        Ok(Arc::new(AnyName(v)))
    }
}

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.read(buf),
            ClientStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.write(buf),
            ClientStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(s) => s.flush(),
            ClientStream::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_names_map_to_rustls_suites() {
        let s = cipher_suites(
            "ECDHE-RSA-AES128-GCM-SHA256:HIGH:!aNULL",
            "TLS_AES_128_GCM_SHA256",
        );
        let names: Vec<&str> = s.iter().map(openssl_name).collect();
        assert_eq!(
            names,
            ["TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]
        );
        // Nothing rustls has: that version's defaults.
        assert_eq!(
            cipher_suites("DEFAULT", "").len(),
            rustls::crypto::ring::ALL_CIPHER_SUITES.len()
        );
        assert!(protocols("TLSv1.2 TLSv1.3").unwrap().len() == 2);
        assert!(protocols("TLSv1.1").is_err());
        assert!(protocols("SSLv3").is_err());
    }
}
