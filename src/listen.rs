//! The listening sockets `bind` asks for: one per address, each with `tcp-backlog`, IPv6
//! ones IPv6-only so that `bind * -::*` can take both families on one port, as Redis does.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::util::net::Socket;

/// A `bind` address could not be listened on.
#[derive(Debug)]
pub struct BindError {
    pub addr: String,
    pub error: std::io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not listen on {}: {}", self.addr, self.error)
    }
}

/// One `bind` word: the address and whether failing to bind it is fatal (`-` marks it
/// optional). `*` is every IPv4 address, `::*` every IPv6 one.
pub fn parse_bind_word(word: &str) -> Result<(IpAddr, bool), String> {
    let (optional, host) = match word.strip_prefix('-') {
        Some(h) => (true, h),
        None => (false, word),
    };
    let ip = match host {
        "*" => IpAddr::from([0u8; 4]),
        "::*" => IpAddr::from([0u16; 8]),
        h => match h.parse() {
            Ok(ip) => ip,
            // A host name, as Redis's getaddrinfo takes it: its first address.
            Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(h, 0))
                .ok()
                .and_then(|mut a| a.next())
                .map(|a| a.ip())
                .ok_or_else(|| format!("'{h}' is not an address"))?,
        },
    };
    Ok((ip, optional))
}

/// Binds every address of `bind` on `port`. An optional address the machine does not have
/// (or whose family it lacks) is skipped with a log line; any other failure is an error.
/// An empty `bind` binds nothing (Redis's zero bind addresses: no TCP listener).
pub fn bind_all(bind: &str, port: u16, backlog: i32) -> Result<Vec<TcpListener>, BindError> {
    let mut listeners = Vec::new();
    if bind.split_whitespace().next().is_none() {
        return Ok(listeners);
    }
    for word in bind.split_whitespace() {
        let (ip, optional) = parse_bind_word(word).map_err(|e| BindError {
            addr: word.to_string(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        let addr = SocketAddr::new(ip, port);
        match listen(addr, backlog) {
            Ok(l) => listeners.push(l),
            Err(e) if optional && unavailable(&e) => {
                log::warn!("skipping optional bind address {addr}: {e}");
            }
            Err(error) => {
                return Err(BindError {
                    addr: addr.to_string(),
                    error,
                })
            }
        }
    }
    if listeners.is_empty() {
        return Err(BindError {
            addr: bind.to_string(),
            error: std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                "no address of bind could be listened on",
            ),
        });
    }
    Ok(listeners)
}

/// A listening socket: TCP (plain or TLS), or the Unix socket `unixsocket` names.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Waits for the next client.
    pub fn accept(&self) -> std::io::Result<Socket> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Socket::Tcp(s)),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Socket::Unix(s)),
        }
    }

    fn fd(&self) -> std::os::fd::RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }
}

/// One listening socket and its accept loop's stop flag.
pub struct Listening {
    pub listener: Listener,
    /// The TLS port's (else plain TCP or the Unix socket).
    pub tls: bool,
    closed: AtomicBool,
}

impl Listening {
    pub fn new(listener: TcpListener, tls: bool) -> Arc<Listening> {
        Listening::of(Listener::Tcp(listener), tls)
    }

    pub fn of(listener: Listener, tls: bool) -> Arc<Listening> {
        Arc::new(Listening {
            listener,
            tls,
            closed: AtomicBool::new(false),
        })
    }

    fn is_tcp(&self, tls: bool) -> bool {
        matches!(self.listener, Listener::Tcp(_)) && self.tls == tls
    }

    /// True once the port moved: its accept loop ends (and the socket closes with it).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops taking connections: a blocked accept(2) returns (EINVAL) once the socket is
    /// shut down, and the loop then finds the flag.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // SAFETY: shutdown(2) on a socket this struct owns; an error leaves it as it was.
        unsafe {
            libc::shutdown(self.listener.fd(), libc::SHUT_RDWR);
        }
    }
}

/// Listens on the Unix socket at `path` as Redis's anetUnixServer: a file left there by an
/// earlier run is removed first, and a non-zero `perm` (`unixsocketperm`) is the file's mode.
pub fn bind_unix(path: &str, perm: u32, backlog: i32) -> std::io::Result<Listener> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    // std listens with its own backlog; a second listen(2) sets `tcp-backlog`'s, as Redis.
    // SAFETY: listen(2) on a socket the listener owns.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))?;
    }
    Ok(Listener::Unix(listener, PathBuf::from(path)))
}

/// Starts the accept loop of one listener (the server installs it; nothing below the server
/// knows the pool).
pub type Spawner = Box<dyn Fn(Arc<Listening>) -> std::io::Result<()> + Send + Sync>;

/// The listeners in use, so that CONFIG SET port / tls-port can move them at run time.
#[derive(Default)]
pub struct Ports {
    inner: Mutex<PortsInner>,
}

#[derive(Default)]
struct PortsInner {
    spawn: Option<Spawner>,
    open: Vec<Arc<Listening>>,
}

impl Ports {
    /// Stops taking connections on every port: the server is exiting, and a client that
    /// saw its connection end must find the port refused, as after Redis's exit.
    /// The Unix socket's file goes, as Redis's closeListeningSockets removes it.
    pub fn close_all(&self) {
        for l in &self.inner.lock().open {
            l.close();
            if let Listener::Unix(_, path) = &l.listener {
                log::info!("Removing the unix socket file.");
                if let Err(e) = std::fs::remove_file(path) {
                    log::warn!("Error removing the unix socket file: {e}");
                }
            }
        }
    }

    /// Serves `listeners` through `spawn`, which later rebinds use too.
    pub fn serve(&self, spawn: Spawner, listeners: Vec<Arc<Listening>>) -> std::io::Result<()> {
        let mut inner = self.inner.lock();
        for l in &listeners {
            spawn(l.clone())?;
        }
        inner.open.extend(listeners);
        inner.spawn = Some(spawn);
        Ok(())
    }

    /// Moves the plain (or TLS) listeners to `port` (0: none), as Redis's changeListenPort,
    /// except that the new port is bound before the old one closes: a port in use is an
    /// error that leaves the old listeners as they were. Connections already accepted are
    /// not the listeners' and stay.
    pub fn rebind(&self, tls: bool, bind: &str, port: u16, backlog: i32) -> Result<(), BindError> {
        let mut inner = self.inner.lock();
        let new = inner.listen(bind, port, tls, backlog)?;
        let (old, kept): (Vec<_>, Vec<_>) = inner.open.drain(..).partition(|l| l.is_tcp(tls));
        for l in &old {
            l.close();
        }
        inner.open = kept;
        inner.open.extend(new);
        Ok(())
    }

    /// Listens on the addresses of `bind` instead, on the plain and TLS ports (0: none), as
    /// Redis's changeBindAddr: the old listeners close first (the new addresses may share
    /// their port), and on a failure the new ones close too, leaving none: the caller puts
    /// the old addresses back the same way. The Unix socket stays.
    pub fn replace_all(
        &self,
        bind: &str,
        plain: u16,
        tls: u16,
        backlog: i32,
    ) -> Result<(), BindError> {
        let mut inner = self.inner.lock();
        let (old, mut new): (Vec<_>, Vec<_>) = inner
            .open
            .drain(..)
            .partition(|l| matches!(l.listener, Listener::Tcp(_)));
        for l in old {
            l.close();
        }
        let kept = new.len();
        for (port, is_tls) in [(plain, false), (tls, true)] {
            match inner.listen(bind, port, is_tls, backlog) {
                Ok(ls) => new.extend(ls),
                Err(e) => {
                    for l in new.drain(kept..) {
                        l.close();
                    }
                    inner.open = new;
                    return Err(e);
                }
            }
        }
        inner.open = new;
        Ok(())
    }
}

impl PortsInner {
    /// Binds `bind` on `port` (0: nothing) and starts the accept loops; on a failure the
    /// listeners it made are closed again.
    fn listen(
        &self,
        bind: &str,
        port: u16,
        tls: bool,
        backlog: i32,
    ) -> Result<Vec<Arc<Listening>>, BindError> {
        if port == 0 {
            return Ok(Vec::new());
        }
        let new: Vec<Arc<Listening>> = bind_all(bind, port, backlog)?
            .into_iter()
            .map(|l| Listening::new(l, tls))
            .collect();
        if let Some(spawn) = &self.spawn {
            if let Err(error) = new.iter().try_for_each(|l| spawn(l.clone())) {
                for l in &new {
                    l.close();
                }
                return Err(BindError {
                    addr: format!("port {port}"),
                    error,
                });
            }
        }
        Ok(new)
    }
}

/// The errors Redis forgives on an optional address: the address or its family is missing.
fn unavailable(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EADDRNOTAVAIL
                | libc::EAFNOSUPPORT
                | libc::EPROTONOSUPPORT
                | libc::ESOCKTNOSUPPORT
                | libc::EPFNOSUPPORT
                | libc::ENOPROTOOPT
        )
    )
}

fn listen(addr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    let listener = TcpListener::from(crate::util::net::tcp_socket(addr)?);
    let fd = listener.as_raw_fd();
    let one: libc::c_int = 1;
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, one)?;
    if addr.is_ipv6() {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, one)?;
    }
    let (storage, len) = crate::util::net::sockaddr(addr);
    // SAFETY: storage holds a sockaddr of `len` bytes for this family.
    if unsafe { libc::bind(fd, &storage as *const _ as *const libc::sockaddr, len) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a bound socket.
    if unsafe { libc::listen(fd, backlog) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(listener)
}

fn setsockopt(fd: i32, level: i32, opt: i32, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: value is a c_int that lives across the call, its size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &value as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// TCP keepalive as Redis sets it (`tcp-keepalive`): the first probe after `secs` of
/// silence, the next ones `secs / 3` apart, three unanswered ones close the connection.
pub fn keepalive(stream: &std::net::TcpStream, secs: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let secs = secs.min(i32::MAX as u64) as libc::c_int;
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
    setsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        (secs / 3).max(1),
    )?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)
}

/// Under `supervised systemd` (or `auto` with systemd's $NOTIFY_SOCKET set), tells systemd
/// the server is ready, as Redis does; a failure is only logged.
pub fn notify_ready(supervised: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        if supervised == "systemd" {
            log::warn!("systemd supervision requested, but NOTIFY_SOCKET not found");
        }
        return;
    };
    if !matches!(supervised, "systemd" | "auto") {
        return;
    }
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => return log::warn!("cannot notify systemd: {e}"),
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket, as systemd may hand out.
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(b"READY=1\n", &a))
    } else {
        sock.send_to(b"READY=1\n", &path)
    };
    match sent {
        Ok(_) => log::info!("supervised by systemd, told it we are ready"),
        Err(e) => log::warn!("cannot notify systemd: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_words() {
        assert_eq!(
            parse_bind_word("-::1").unwrap(),
            ("::1".parse().unwrap(), true)
        );
        assert_eq!(
            parse_bind_word("*").unwrap(),
            ("0.0.0.0".parse().unwrap(), false)
        );
        assert_eq!(
            parse_bind_word("::*").unwrap().0,
            "::".parse::<IpAddr>().unwrap()
        );
        assert!(parse_bind_word("no such host.invalid").is_err());
    }

    #[test]
    fn several_addresses_and_a_missing_optional_one() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ls = bind_all("127.0.0.1 127.0.0.2 -192.0.2.1", port, 16).unwrap();
        assert_eq!(ls.len(), 2);
        assert!(bind_all("192.0.2.1", port, 16).is_err(), "not optional");
    }

    #[test]
    fn keepalive_as_redis_sets_it() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        keepalive(&s, 60).unwrap();
        let get = |level, opt| {
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: v and len are valid for getsockopt to write.
            let r = unsafe {
                libc::getsockopt(
                    s.as_raw_fd(),
                    level,
                    opt,
                    &mut v as *mut _ as *mut _,
                    &mut len,
                )
            };
            assert_eq!(r, 0);
            v
        };
        assert_eq!(get(libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 60);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 20);
    }
}
