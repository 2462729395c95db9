//! IP TTL: how far a datagram sent with a small one gets.
//!
//! Every router on a path decrements the TTL and drops what would leave
//! with none. The simulator has no routers, only the sender's NAT (a router
//! too) and a path that holds [`ROUTERS_BETWEEN_HOSTS`] of them; it never
//! needs more, since the only small TTL in use is one meant to pass the
//! sender's NAT and die before the far side's.

/// The TTL of a datagram whose node names none (Linux's default).
pub const DEFAULT_TTL: u8 = 64;

/// Routers between any two hosts (or, for a host behind a NAT, between its
/// NAT and the far side): on the internet there are at least two.
pub const ROUTERS_BETWEEN_HOSTS: u8 = 2;

/// How far a datagram sent with a given TTL gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reach {
    /// It dies in the sender's own NAT, before translation: the NAT makes
    /// no flow or mapping for it.
    OwnNat,
    /// It passes the sender's NAT (if any) and dies on the path.
    Path,
    /// It arrives.
    FarSide,
}

impl Reach {
    /// How far a datagram sent with `ttl` gets from a sender `behind_nat`
    /// or not.
    pub(super) fn of(ttl: Option<u8>, behind_nat: bool) -> Self {
        let ttl = ttl.unwrap_or(DEFAULT_TTL);
        let left = if behind_nat {
            // A router forwards only what it can decrement to at least 1.
            if ttl <= 1 {
                return Self::OwnNat;
            }
            ttl - 1
        } else {
            ttl
        };
        if left > ROUTERS_BETWEEN_HOSTS {
            Self::FarSide
        } else {
            Self::Path
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nat_takes_one_and_the_path_two() {
        let public = |ttl| Reach::of(Some(ttl), false);
        let natted = |ttl| Reach::of(Some(ttl), true);
        assert_eq!(public(0), Reach::Path);
        assert_eq!(public(2), Reach::Path);
        assert_eq!(public(3), Reach::FarSide);
        assert_eq!(natted(0), Reach::OwnNat);
        assert_eq!(natted(1), Reach::OwnNat);
        assert_eq!(natted(2), Reach::Path);
        assert_eq!(natted(3), Reach::Path);
        assert_eq!(natted(4), Reach::FarSide);
        assert_eq!(Reach::of(None, true), Reach::FarSide);
        assert_eq!(Reach::of(None, false), Reach::FarSide);
    }
}
