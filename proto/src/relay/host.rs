//! What counts as one host, and how much each host holds.
//!
//! Per-source limits (handshakes, subscriptions, streams created) are only
//! as good as the notion of "one source". An IPv4 host has one address; an
//! IPv6 host is routinely given a whole /64 and may send from any of its
//! 2^64 addresses, so limits keyed by the full IPv6 address would be no
//! limits at all. A [`Host`] is therefore the IPv4 address, or the /64
//! prefix of an IPv6 one (an IPv4-mapped IPv6 address is its IPv4 host).
//!
//! [`HostCounts`] counts what each host holds now (subscriptions, streams).
//! An entry exists only while its host holds at least one thing, and the
//! things it counts are themselves capped, so the map never has more
//! entries than the table it counts: bounded memory whatever the sources.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// One source host: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Host(IpAddr);

impl Host {
    /// The host `ip` belongs to.
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

/// Things held per host; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct HostCounts(HashMap<Host, u32>);

impl HostCounts {
    /// What `host` holds now.
    pub(crate) fn get(&self, host: Host) -> u32 {
        self.0.get(&host).copied().unwrap_or(0)
    }

    /// `host` holds one more.
    pub(crate) fn add(&mut self, host: Host) {
        *self.0.entry(host).or_insert(0) += 1;
    }

    /// `host` holds one fewer; its entry goes when it holds none.
    pub(crate) fn remove(&mut self, host: Host) {
        if let Some(n) = self.0.get_mut(&host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(&host);
            }
        }
    }

    /// Hosts holding something (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn hosts(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_ipv6_host_is_its_slash_64() {
        let a = Host::of(ip("2001:db8:1:2:aaaa::1"));
        assert_eq!(a, Host::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_ne!(a, Host::of(ip("2001:db8:1:3::1")));
        assert_eq!(Host::of(ip("::ffff:192.0.2.1")), Host::of(ip("192.0.2.1")));
        assert_ne!(Host::of(ip("192.0.2.1")), Host::of(ip("192.0.2.2")));
    }

    #[test]
    fn counts_forget_hosts_that_hold_nothing() {
        let mut c = HostCounts::default();
        let h = Host::of(ip("192.0.2.1"));
        c.add(h);
        c.add(h);
        assert_eq!(c.get(h), 2);
        c.remove(h);
        c.remove(h);
        c.remove(h);
        assert_eq!(c.get(h), 0);
        assert_eq!(c.hosts(), 0);
    }
}
