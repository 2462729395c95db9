//! Two network namespaces joined by a veth pair, with nftables dropping a
//! share of the UDP datagrams each side receives over it. Dropping the
//! [`Link`] deletes both namespaces, and the veth pair with them.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The nftables table and chain the loss rule lives in.
const TABLE: &str = "loss";
const CHAIN: &str = "in";

/// One side of the link: a namespace and its end of the veth pair.
#[derive(Debug)]
pub struct Side {
    /// The namespace's name.
    pub ns: String,
    /// The veth device inside it.
    pub dev: String,
    /// The device's address (a /24).
    pub addr: Ipv4Addr,
}

/// What one side's nftables rules counted.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    /// Datagrams in over the veth, dropped ones included.
    pub arrived: u64,
    /// Datagrams the loss rule dropped.
    pub dropped: u64,
}

/// The relay's namespace and the viewer's, joined by a veth pair.
#[derive(Debug)]
pub struct Link {
    pub relay: Side,
    pub viewer: Side,
}

impl Link {
    /// Creates the namespaces, named after `tag` (the test's pid), and the
    /// link between them; panics with the failing command.
    pub fn create(tag: u32) -> Self {
        // Namespaces are separate, so the subnet only has to look distinct.
        let subnet = u8::try_from(tag % 250 + 1).expect("below 251");
        let side = |role: char, host: u8| Side {
            ns: format!("shoal-{role}-{tag}"),
            // At most 15 characters: "shv-" and a pid of up to 7 digits.
            dev: format!("sh{role}-{tag}"),
            addr: Ipv4Addr::new(10, 77, subnet, host),
        };
        // The guard exists before anything it removes, so a failure part way
        // still cleans up.
        let link = Self {
            relay: side('r', 1),
            viewer: side('v', 2),
        };
        for side in [&link.relay, &link.viewer] {
            // A namespace left by a killed run whose pid this one reuses.
            let _ = quiet(&["ip", "netns", "del", &side.ns]);
            run(&["ip", "netns", "add", &side.ns]);
        }
        run(&[
            "ip",
            "link",
            "add",
            &link.relay.dev,
            "netns",
            &link.relay.ns,
            "type",
            "veth",
            "peer",
            "name",
            &link.viewer.dev,
            "netns",
            &link.viewer.ns,
        ]);
        for side in [&link.relay, &link.viewer] {
            let cidr = format!("{}/24", side.addr);
            run(&["ip", "-n", &side.ns, "addr", "add", &cidr, "dev", &side.dev]);
            run(&["ip", "-n", &side.ns, "link", "set", &side.dev, "up"]);
            run(&["ip", "-n", &side.ns, "link", "set", "lo", "up"]);
        }
        link
    }

    /// Makes `side` drop the UDP datagrams arriving over the veth that
    /// `selector` (an nftables expression such as `numgen random mod 100 <
    /// 5`) picks, counting them all.
    ///
    /// The drop sits on the receiver's input hook, as a lossy wire would: a
    /// drop on the sender's output hook fails its `sendto` with EPERM,
    /// which is a local firewall, not loss.
    pub fn drop_incoming_udp(side: &Side, selector: &[&str]) {
        Self::count_incoming_udp(side);
        Self::add_drop(side, selector);
    }

    /// Makes `side` count the UDP datagrams arriving over the veth, with
    /// nothing dropped yet.
    pub fn count_incoming_udp(side: &Side) {
        let nft = |args: &[&str]| run(&nft_in(side, args));
        nft(&["add", "table", "inet", TABLE]);
        nft(&[
            "add",
            "chain",
            "inet",
            TABLE,
            CHAIN,
            "{ type filter hook input priority 0; }",
        ]);
        let rule = ["add", "rule", "inet", TABLE, CHAIN];
        nft(&[&rule[..], &udp_from(side)[..], &["counter"]].concat());
    }

    /// Adds to `side`'s counting chain a rule dropping (and counting) the
    /// UDP datagrams `selector` picks; returns the rule's handle, for
    /// [`Link::delete_rule`].
    pub fn add_drop(side: &Side, selector: &[&str]) -> u64 {
        // --echo --handle prints the rule back with its handle.
        let rule = ["--echo", "--handle", "add", "rule", "inet", TABLE, CHAIN];
        let args = [
            &rule[..],
            &udp_from(side)[..],
            selector,
            &["counter", "drop"],
        ]
        .concat();
        let out = run(&nft_in(side, &args));
        let text = String::from_utf8_lossy(&out.stdout);
        text.split("# handle ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no handle in nft's echo:\n{text}"))
    }

    /// Deletes the rule `handle` from `side`'s chain.
    pub fn delete_rule(side: &Side, handle: u64) {
        let handle = handle.to_string();
        run(&nft_in(
            side,
            &["delete", "rule", "inet", TABLE, CHAIN, "handle", &handle],
        ));
    }

    /// UDP datagrams (or GRO trains) `side` has received over the veth so
    /// far, and how many of them its loss rule, if it has one, dropped.
    pub fn counters(side: &Side) -> Counters {
        let out = run(&[
            "ip", "netns", "exec", &side.ns, "nft", "list", "chain", "inet", TABLE, CHAIN,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut packets = text
            .split("counter packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok());
        // Without a drop rule (yet, or any more), nothing was dropped.
        match (packets.next(), packets.next()) {
            (Some(arrived), dropped) => Counters {
                arrived,
                dropped: dropped.unwrap_or(0),
            },
            _ => panic!("no counter in nft's listing:\n{text}"),
        }
    }

    /// `program` to be run inside `side`'s namespace.
    pub fn command(side: &Side, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &side.ns]).arg(program);
        cmd
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for side in [&self.relay, &self.viewer] {
            if let Err(why) = quiet(&["ip", "netns", "del", &side.ns]) {
                eprintln!("cleanup: {why}");
            }
        }
    }
}

/// `nft ARGS` inside `side`'s namespace.
fn nft_in<'a>(side: &'a Side, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["ip", "netns", "exec", &side.ns, "nft"];
    all.extend_from_slice(args);
    all
}

/// The match for UDP datagrams arriving at `side` over the veth.
fn udp_from(side: &Side) -> [&str; 5] {
    ["iifname", &side.dev, "meta", "l4proto", "udp"]
}

/// Runs `args` and returns its output; panics naming the exact command if
/// it cannot be run or fails.
fn run(args: &[&str]) -> Output {
    quiet(args).unwrap_or_else(|why| panic!("{why}"))
}

fn quiet(args: &[&str]) -> Result<Output, String> {
    let line = args.join(" ");
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{line}` could not be run: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
