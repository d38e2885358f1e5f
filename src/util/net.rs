//! Addresses as Redis judges them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
