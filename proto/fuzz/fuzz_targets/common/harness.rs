//! The harness every state-machine target runs: it owns the machine and
//! the shared oracles, feeds the input's steps, and after every call drains
//! what the machine sent (checked against the oracles) before the target's
//! own [`Checks`] look at it.

use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::Time;
use shoal_proto::peer::Peer;
use shoal_proto::relay::Relay;
use shoal_proto::viewer::Viewer;

use super::{Amplification, Fixer, Oracle, check_progress, steps};

/// A state machine's doors, as the harness calls them.
pub trait Machine {
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]);
    fn handle_timeout(&mut self, now: Time);
    fn poll_timeout(&self) -> Option<Time>;
    /// The next datagram out, copied.
    fn poll_sent(&mut self) -> Option<(SocketAddr, Vec<u8>)>;
}

/// The machines' doors share their names and signatures.
macro_rules! machine {
    ($($machine:ty),*) => {$(
        impl Machine for $machine {
            fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
                <$machine>::handle_datagram(self, now, from, bytes);
            }
            fn handle_timeout(&mut self, now: Time) {
                <$machine>::handle_timeout(self, now);
            }
            fn poll_timeout(&self) -> Option<Time> {
                <$machine>::poll_timeout(self)
            }
            fn poll_sent(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
                self.poll_transmit().map(|t| (t.dst, t.payload.to_vec()))
            }
        }
    )*};
}

machine!(Relay, Peer, Viewer);

/// The machine and what every target checks it with.
pub struct Rig<M> {
    pub machine: M,
    /// Makes datagrams valid; learns from what the machine sends.
    pub fixer: Fixer,
    /// Has fed stream data signed? Every datagram sent is checked against
    /// it.
    pub oracle: Oracle,
    /// Fed every datagram; a target checks `sent` against it if the
    /// machine answers strangers.
    pub amplification: Amplification,
    /// What the machine sent in the last drain.
    pub sent: Vec<(SocketAddr, Vec<u8>)>,
}

/// What one target asserts beyond the shared oracles.
pub trait Checks {
    type Machine: Machine;
    /// Notes a (fixed) datagram from `from` before the machine sees it;
    /// the rig's oracles have noted it already.
    fn note(&mut self, _from: SocketAddr, _bytes: &[u8]) {}
    /// Checks what the machine sent (`rig.sent`, its stream data already
    /// found genuine) and told; `input` is the datagram just handled
    /// (`None`: timers ran).
    fn check(&mut self, rig: &mut Rig<Self::Machine>, input: Option<(SocketAddr, usize)>);
}

/// A target: the rig and the target's own checks.
pub struct Harness<C: Checks> {
    pub rig: Rig<C::Machine>,
    pub checks: C,
}

impl<C: Checks> Harness<C> {
    pub fn new(machine: C::Machine, checks: C) -> Self {
        let rig = Rig {
            machine,
            fixer: Fixer::default(),
            oracle: Oracle::default(),
            amplification: Amplification::default(),
            sent: Vec::new(),
        };
        Self { rig, checks }
    }

    /// Feeds the input's steps from `now` on, datagrams from `addrs`,
    /// checking after every call; then lets an hour pass.
    pub fn play(&mut self, input: &[u8], addrs: &[SocketAddr; 8], mut now: Time) {
        for step in steps(input) {
            now += step.advance;
            let from = addrs[step.source];
            let bytes = self.rig.fixer.fix(from, step.fix, step.datagram).to_vec();
            self.rig.oracle.fed(&bytes);
            self.rig.amplification.fed(from, &bytes);
            self.checks.note(from, &bytes);
            self.rig.machine.handle_datagram(now, from, &bytes);
            self.drain(Some((from, bytes.len())));
            if step.timers {
                self.rig.machine.handle_timeout(now);
                check_progress(now, self.rig.machine.poll_timeout());
                self.drain(None);
            }
        }
        self.rig
            .machine
            .handle_timeout(now + Duration::from_secs(3600));
        self.drain(None);
    }

    /// Drains what the machine sent into `rig.sent`, checks its stream
    /// data is genuine and lets the fixer learn from it, then runs the
    /// target's checks; `input` as for [`Checks::check`].
    pub fn drain(&mut self, input: Option<(SocketAddr, usize)>) {
        let rig = &mut self.rig;
        rig.sent.clear();
        while let Some(sent) = rig.machine.poll_sent() {
            rig.sent.push(sent);
        }
        for (to, bytes) in &rig.sent {
            rig.oracle.check_sent(bytes);
            rig.fixer.sent(*to, bytes);
        }
        self.checks.check(rig, input);
    }
}
