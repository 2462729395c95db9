//! Which [`LinkConfig`] applies to a directed link.
//!
//! The most specific rule wins: a config set for the exact (from, to) pair;
//! else a config set for all links from `from` or all links to `to`, the one
//! set later winning if both exist; else the default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::link::LinkConfig;

/// The configured rules. Every change bumps `generation`, which links
/// compare against to know their cached config is out of date.
#[derive(Debug, Default)]
pub(super) struct LinkRules {
    default: LinkConfig,
    pairs: BTreeMap<(SocketAddr, SocketAddr), LinkConfig>,
    /// Rules for all links leaving an address, with the generation they
    /// were set in (to tell which of a from- and a to-rule is newer).
    from: BTreeMap<SocketAddr, (u64, LinkConfig)>,
    /// Rules for all links reaching an address.
    to: BTreeMap<SocketAddr, (u64, LinkConfig)>,
    generation: u64,
}

impl LinkRules {
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn set_default(&mut self, config: LinkConfig) {
        config.validate();
        self.generation += 1;
        self.default = config;
    }

    pub(super) fn set_pair(&mut self, from: SocketAddr, to: SocketAddr, config: LinkConfig) {
        config.validate();
        self.generation += 1;
        self.pairs.insert((from, to), config);
    }

    pub(super) fn set_from(&mut self, from: SocketAddr, config: LinkConfig) {
        config.validate();
        self.generation += 1;
        self.from.insert(from, (self.generation, config));
    }

    pub(super) fn set_to(&mut self, to: SocketAddr, config: LinkConfig) {
        config.validate();
        self.generation += 1;
        self.to.insert(to, (self.generation, config));
    }

    /// The least delay any link can have under these rules: its latency
    /// less its jitter, over every rule.
    pub(super) fn least_delay(&self) -> Duration {
        let least = |c: &LinkConfig| c.latency.saturating_sub(c.jitter);
        self.pairs
            .values()
            .chain(self.from.values().map(|(_, c)| c))
            .chain(self.to.values().map(|(_, c)| c))
            .map(least)
            .fold(least(&self.default), Duration::min)
    }

    pub(super) fn resolve(&self, from: SocketAddr, to: SocketAddr) -> LinkConfig {
        if let Some(config) = self.pairs.get(&(from, to)) {
            return *config;
        }
        match (self.from.get(&from), self.to.get(&to)) {
            (Some((g_from, c_from)), Some((g_to, c_to))) => {
                if g_from > g_to {
                    *c_from
                } else {
                    *c_to
                }
            }
            (Some((_, config)), None) | (None, Some((_, config))) => *config,
            (None, None) => self.default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn latency(ms: u64) -> LinkConfig {
        LinkConfig::with_latency(Duration::from_millis(ms))
    }

    #[test]
    fn most_specific_rule_wins() {
        let (a, b, c) = (addr(1), addr(2), addr(3));
        let mut rules = LinkRules::default();
        rules.set_default(latency(1));
        assert_eq!(rules.resolve(a, b), latency(1));

        rules.set_pair(a, b, latency(2));
        rules.set_from(a, latency(3));
        rules.set_to(b, latency(4));
        assert_eq!(rules.resolve(a, b), latency(2), "pair beats node rules");
        assert_eq!(rules.resolve(a, c), latency(3));
        assert_eq!(rules.resolve(c, b), latency(4));
        assert_eq!(rules.resolve(c, a), latency(1));
    }

    #[test]
    fn later_node_rule_wins() {
        let (a, b) = (addr(1), addr(2));
        let mut rules = LinkRules::default();
        rules.set_from(a, latency(3));
        rules.set_to(b, latency(4));
        assert_eq!(rules.resolve(a, b), latency(4));
        rules.set_from(a, latency(5));
        assert_eq!(rules.resolve(a, b), latency(5));
    }

    #[test]
    fn every_change_bumps_the_generation() {
        let mut rules = LinkRules::default();
        let g = rules.generation();
        rules.set_default(latency(1));
        rules.set_to(addr(1), latency(1));
        assert_eq!(rules.generation(), g + 2);
    }
}
