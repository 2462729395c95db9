//! Where `shoal watch` and `shoal peer` write the stream: stdout, a file,
//! or UDP datagrams of seven TS packets (the size players such as VLC and
//! ffmpeg expect).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use anyhow::Context;

/// TS packets per UDP datagram: 7 × 188 = 1316 bytes fits a 1500-byte MTU.
const TS_PER_DATAGRAM: usize = 7;
const TS_PACKET: usize = 188;
const DATAGRAM: usize = TS_PER_DATAGRAM * TS_PACKET;

/// The parsed `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// `-`: standard output.
    Stdout,
    /// A file, created or truncated.
    File(String),
    /// `udp://HOST:PORT`.
    Udp(SocketAddr),
}

impl Target {
    /// Parses `--output`.
    pub(super) fn parse(text: &str) -> anyhow::Result<Self> {
        if text == "-" {
            return Ok(Self::Stdout);
        }
        if let Some(rest) = text.strip_prefix("udp://") {
            let fix = "use udp://HOST:PORT such as udp://127.0.0.1:1234";
            let rest = rest.trim_end_matches('/');
            let addr = match rest.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => rest
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        anyhow::anyhow!("--output {text:?}: not a UDP address; {fix}")
                    })?,
            };
            if addr.port() == 0 {
                anyhow::bail!("--output {text:?}: port 0 cannot be sent to; {fix}");
            }
            return Ok(Self::Udp(addr));
        }
        if text.is_empty() {
            anyhow::bail!("--output \"\": empty; use -, a file path or udp://HOST:PORT");
        }
        Ok(Self::File(text.to_owned()))
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// Done.
    Ok,
    /// The reader went away (closed pipe): stop quietly.
    Closed,
}

/// An open output.
#[derive(Debug)]
pub(super) enum Output {
    /// Buffered stdout.
    Stdout(BufWriter<io::Stdout>),
    /// Buffered file.
    File(BufWriter<File>, String),
    /// A socket, its destination, and the bytes short of a full datagram.
    Udp(UdpSocket, SocketAddr, Vec<u8>),
}

impl Output {
    /// Opens `target`.
    pub(super) fn open(target: &Target) -> anyhow::Result<Self> {
        Ok(match target {
            Target::Stdout => Self::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())),
            Target::File(path) => {
                let file = File::create(path).with_context(|| {
                    format!(
                        "--output {path:?}: cannot create it; check the directory and permissions"
                    )
                })?;
                Self::File(BufWriter::with_capacity(1 << 16, file), path.clone())
            }
            Target::Udp(dst) => {
                let socket = UdpSocket::bind(super::udp::wildcard_for(*dst))
                    .with_context(|| format!("--output udp://{dst}: cannot open a UDP socket"))?;
                Self::Udp(socket, *dst, Vec::with_capacity(DATAGRAM * 2))
            }
        })
    }

    /// Writes one chunk's bytes (buffered; see [`Self::flush`]).
    pub(super) fn write(&mut self, bytes: &[u8]) -> anyhow::Result<Written> {
        match self {
            Self::Stdout(w) => stdout_result(w.write_all(bytes)),
            Self::File(w, path) => {
                w.write_all(bytes).with_context(|| {
                    format!("--output {path:?}: cannot write; is the disk full?")
                })?;
                Ok(Written::Ok)
            }
            Self::Udp(socket, dst, pending) => {
                pending.extend_from_slice(bytes);
                let mut sent = 0;
                while pending.len() - sent >= DATAGRAM {
                    send(socket, *dst, &pending[sent..sent + DATAGRAM])?;
                    sent += DATAGRAM;
                }
                pending.drain(..sent);
                Ok(Written::Ok)
            }
        }
    }

    /// Pushes buffered bytes out (a UDP remainder waits for a full datagram).
    pub(super) fn flush(&mut self) -> anyhow::Result<Written> {
        match self {
            Self::Stdout(w) => stdout_result(w.flush()),
            Self::File(w, path) => {
                w.flush().with_context(|| {
                    format!("--output {path:?}: cannot write; is the disk full?")
                })?;
                Ok(Written::Ok)
            }
            Self::Udp(..) => Ok(Written::Ok),
        }
    }

    /// Flushes everything, a short last datagram included.
    pub(super) fn finish(&mut self) -> anyhow::Result<Written> {
        if let Self::Udp(socket, dst, pending) = self {
            if !pending.is_empty() {
                send(socket, *dst, pending)?;
                pending.clear();
            }
            return Ok(Written::Ok);
        }
        self.flush()
    }
}

fn stdout_result(r: io::Result<()>) -> anyhow::Result<Written> {
    match r {
        Ok(()) => Ok(Written::Ok),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Written::Closed),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

fn send(socket: &UdpSocket, dst: SocketAddr, bytes: &[u8]) -> anyhow::Result<()> {
    match socket.send_to(bytes, dst) {
        Ok(_) => Ok(()),
        // Nobody listening yet is normal for a player started later.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(e).with_context(|| format!("--output udp://{dst}: cannot send")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(Target::parse("-").ok(), Some(Target::Stdout));
        assert_eq!(
            Target::parse("out.ts").ok(),
            Some(Target::File("out.ts".into()))
        );
        assert_eq!(
            Target::parse("udp://127.0.0.1:1234").ok(),
            Some(Target::Udp(SocketAddr::from(([127, 0, 0, 1], 1234))))
        );
        assert!(Target::parse("udp://nowhere").is_err());
        assert!(Target::parse("udp://127.0.0.1:0").is_err());
    }

    #[test]
    fn udp_sends_whole_ts_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let dst = rx.local_addr().expect("addr");
        let mut out = Output::open(&Target::Udp(dst)).expect("open");
        let bytes: Vec<u8> = (0..DATAGRAM * 2 + 100).map(|i| i as u8).collect();
        out.write(&bytes[..500]).expect("write");
        out.write(&bytes[500..]).expect("write");
        out.finish().expect("finish");
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..3 {
            let n = rx.recv(&mut buf).expect("recv");
            sizes.push(n);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(sizes, [DATAGRAM, DATAGRAM, 100]);
        assert_eq!(got, bytes);
    }
}
