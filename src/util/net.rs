//! Addresses as Redis judges them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Redis counts only 127.0.0.1 and ::1 (and ::ffff:127.0.0.1) as local, not all of 127/8: the
/// protected mode and `enable-debug-command local` both ask this.
pub fn is_local(addr: Option<SocketAddr>) -> bool {
    match addr.map(|a| a.ip()) {
        Some(IpAddr::V4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST)
        }
        None => false,
    }
}

/// A new TCP socket of `addr`'s family (close-on-exec).
pub fn tcp_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `addr` as the C socket calls take it.
pub fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than, and aligned for, sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Connects to `addr` within `timeout`, from `source` when it is given and can be bound
/// (Redis's anetTcpNonBlockBestEffortBindConnect: `bind-source-addr` is best effort, and an
/// address that cannot be bound, or of the other family, is left out).
pub fn connect_from(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let source = source.filter(|s| s.is_ipv4() == addr.is_ipv4());
    let Some(source) = source else {
        return TcpStream::connect_timeout(&addr, timeout);
    };
    let stream = TcpStream::from(tcp_socket(addr)?);
    let fd = stream.as_raw_fd();
    let (local, len) = sockaddr(SocketAddr::new(source, 0));
    // SAFETY: `local` holds a sockaddr of `len` bytes for this family.
    if unsafe { libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) } < 0 {
        return TcpStream::connect_timeout(&addr, timeout);
    }
    stream.set_nonblocking(true)?;
    let (remote, len) = sockaddr(addr);
    // SAFETY: as above, for the peer's address.
    let r = unsafe { libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one pollfd, owned here.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            0 => return Err(io::ErrorKind::TimedOut.into()),
            n if n < 0 => return Err(io::Error::last_os_error()),
            _ => {}
        }
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_loopback_addresses_are_local() {
        let at = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        assert!(is_local(at("127.0.0.1:5")));
        assert!(is_local(at("[::1]:5")));
        assert!(is_local(at("[::ffff:127.0.0.1]:5")));
        assert!(!is_local(at("127.0.0.2:5")));
        assert!(!is_local(at("[::ffff:127.0.0.2]:5")));
        assert!(!is_local(at("10.0.0.1:5")));
        assert!(!is_local(None));
    }
}

/// An accepted client's socket: TCP, or the Unix socket `unixsocket` names. The session
/// treats both alike; only addresses, keepalive and Nagle differ.
#[derive(Debug)]
pub enum Socket {
    Tcp(TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Socket {
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_nonblocking(on),
            Socket::Unix(s) => s.set_nonblocking(on),
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_read_timeout(t),
            Socket::Unix(s) => s.set_read_timeout(t),
        }
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_write_timeout(t),
            Socket::Unix(s) => s.set_write_timeout(t),
        }
    }

    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown(how),
            Socket::Unix(s) => s.shutdown(how),
        }
    }

    /// The peer's TCP address (none for a Unix socket's).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.peer_addr().ok(),
            Socket::Unix(_) => None,
        }
    }

    /// The client's and the server's ends as CLIENT LIST's `addr` and `laddr` show them:
    /// `ip:port`, or for a Unix socket its path and `:0` on both, as Redis's
    /// genClientAddrString.
    pub fn addresses(&self) -> (String, String) {
        let text = |a: io::Result<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        match self {
            Socket::Tcp(s) => (text(s.peer_addr()), text(s.local_addr())),
            Socket::Unix(s) => {
                let path = s
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                    .unwrap_or_default();
                (format!("{path}:0"), format!("{path}:0"))
            }
        }
    }

    /// Protected mode and `enable-*-command local` count a Unix socket's clients as local,
    /// as Redis's islocalClient.
    pub fn is_local(&self) -> bool {
        match self {
            Socket::Tcp(s) => is_local(s.peer_addr().ok()),
            Socket::Unix(_) => true,
        }
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, Socket::Unix(_))
    }
}

impl io::Read for Socket {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl io::Write for Socket {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        }
    }
}
