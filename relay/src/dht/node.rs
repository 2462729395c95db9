//! The DHT flags every role shares, and how a role's DHT node is built.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};

use anyhow::Context;
use mainline::Dht;

/// `--dht-bootstrap` and `--no-dht`, for `watch`, `peer` and `publish`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DhtArgs {
    /// A DHT node to join the Mainline DHT through, HOST:PORT; repeat for
    /// several. Replaces the default public bootstrap nodes (a private
    /// DHT, or a test's).
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// Do not use the DHT at all.
    #[arg(long)]
    pub no_dht: bool,
}

/// How a role joins the DHT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtOptions {
    /// Nodes to bootstrap from; `None`: the `mainline` crate's public
    /// defaults (router.bittorrent.com and others).
    pub bootstrap: Option<Vec<SocketAddrV4>>,
}

impl DhtOptions {
    /// The options the flags ask for; `None` with `--no-dht`.
    pub fn from_args(args: &DhtArgs) -> anyhow::Result<Option<Self>> {
        if args.no_dht {
            if let Some(first) = args.dht_bootstrap.first() {
                anyhow::bail!("--dht-bootstrap {first:?} given with --no-dht: drop one of them");
            }
            return Ok(None);
        }
        Self::from_list("--dht-bootstrap", &args.dht_bootstrap).map(Some)
    }

    /// The options for bootstrap nodes given as text, an error naming
    /// `what` (a flag or a config key) for a bad one.
    pub fn from_list(what: &str, nodes: &[String]) -> anyhow::Result<Self> {
        let bootstrap = nodes
            .iter()
            .map(|text| parse_bootstrap(what, text))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self::with_bootstrap(bootstrap))
    }

    /// These bootstrap nodes; none: the public defaults.
    pub fn with_bootstrap(nodes: Vec<SocketAddrV4>) -> Self {
        Self {
            bootstrap: (!nodes.is_empty()).then_some(nodes),
        }
    }

    /// Whether every bootstrap node is on this host: the DHT is then a
    /// local one (a test's), and its nodes bind to loopback so that no
    /// datagram ever leaves the host.
    pub fn is_local(&self) -> bool {
        self.bootstrap
            .as_ref()
            .is_some_and(|nodes| nodes.iter().all(|a| a.ip().is_loopback()))
    }

    /// Starts a DHT node: a client (it asks and stores, but answers no
    /// one) or, for `server`, a full node that also serves others.
    pub fn start(&self, server: bool) -> anyhow::Result<Dht> {
        let mut builder = Dht::builder();
        if let Some(nodes) = &self.bootstrap {
            builder.bootstrap(nodes);
        }
        if self.is_local() {
            builder.bind_address(Ipv4Addr::LOCALHOST);
        }
        if server {
            builder.server_mode();
        }
        builder.build().context("cannot start a DHT node")
    }
}

/// One `--dht-bootstrap`, an error naming `what`.
fn parse_bootstrap(what: &str, text: &str) -> anyhow::Result<SocketAddrV4> {
    bootstrap_node(text).map_err(|why| anyhow::anyhow!("{what} {text:?}: {why}"))
}

/// A bootstrap node: HOST:PORT, resolved now to an IPv4 address (the
/// Mainline DHT is IPv4); the error says why and how to fix it.
pub fn bootstrap_node(text: &str) -> Result<SocketAddrV4, String> {
    let fix = "use HOST:PORT such as router.bittorrent.com:6881 or 127.0.0.1:6881";
    let bad = |why: &str| format!("{why}; {fix}");
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.contains(':') {
        return Err(bad("not HOST:PORT"));
    }
    let addrs: Vec<SocketAddr> = match trimmed.to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => return Err(bad(&format!("cannot resolve it ({e})"))),
    };
    let v4 = addrs.iter().find_map(|a| match a {
        SocketAddr::V4(v4) => Some(*v4),
        SocketAddr::V6(_) => None,
    });
    match v4 {
        Some(a) if a.port() == 0 => Err(bad("port 0 is not a DHT node's port")),
        Some(a) if a.ip().is_unspecified() => Err(bad("0.0.0.0 is not a DHT node")),
        Some(a) => Ok(a),
        None if addrs.is_empty() => Err(bad("the name has no address")),
        None => Err(bad(
            "the Mainline DHT is IPv4 only, and this has no IPv4 address",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_parses_and_names_the_flag() {
        let args = DhtArgs {
            dht_bootstrap: vec!["127.0.0.1:6881".into(), "127.0.0.2:7000".into()],
            no_dht: false,
        };
        let opts = DhtOptions::from_args(&args).expect("ok").expect("on");
        assert_eq!(opts.bootstrap.as_ref().map(Vec::len), Some(2));
        assert!(opts.is_local());
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "0.0.0.0:6881",
            "[::1]:6881",
            "x:y",
        ] {
            let err = parse_bootstrap("--dht-bootstrap", bad)
                .expect_err(bad)
                .to_string();
            assert!(err.starts_with("--dht-bootstrap"), "{err}");
        }
    }

    #[test]
    fn no_dht_turns_it_off_and_refuses_bootstrap_nodes() {
        let off = DhtArgs {
            dht_bootstrap: Vec::new(),
            no_dht: true,
        };
        assert_eq!(DhtOptions::from_args(&off).expect("ok"), None);
        let both = DhtArgs {
            dht_bootstrap: vec!["127.0.0.1:6881".into()],
            no_dht: true,
        };
        assert!(DhtOptions::from_args(&both).is_err());
        let default = DhtOptions::from_args(&DhtArgs::default())
            .expect("ok")
            .expect("on");
        assert_eq!(default.bootstrap, None);
        assert!(!default.is_local());
    }
}
