//! Asking the relay's web face: a bounded `GET` (HTTP/1.0, the answer
//! read to its close), and one stream's line of `/api/streams`: whether
//! it is live, its HTTP readers, and the jumps of those that fell behind.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use shoal_proto::StreamId;

/// Longest a `GET` may take, connect to close.
const TIMEOUT: Duration = Duration::from_secs(3);

/// `GET path` from `addr`: the status code and the body.
pub fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .with_context(|| format!("reading the answer to GET {path} from {addr}"))?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("{addr} answered GET {path} with no HTTP head");
    };
    let status = head
        .split(' ')
        .nth(1)
        .filter(|_| head.starts_with("HTTP/1."))
        .and_then(|code| code.parse().ok())
        .with_context(|| {
            format!(
                "{addr} answered GET {path} with {:?}",
                head.lines().next().unwrap_or("")
            )
        })?;
    Ok((status, body.to_owned()))
}

/// One stream as `/api/streams` shows it (the fields the load tool reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct StreamState {
    /// The relay can serve it.
    pub live: bool,
    /// HTTP readers of it now.
    pub http_readers: u64,
    /// Jumps to a newer keyframe by HTTP readers that fell behind, since
    /// its feed started.
    pub http_reader_jumps: u64,
}

/// `stream`'s line of the web face's `/api/streams`; `None` if it is not
/// carried (yet).
pub fn stream_state(addr: SocketAddr, stream: &StreamId) -> anyhow::Result<Option<StreamState>> {
    let (status, body) = get(addr, "/api/streams")?;
    if status != 200 {
        bail!("{addr} answered {status} to GET /api/streams; is it a shoal relay's --http?");
    }
    parse_streams(&body, stream)
}

fn parse_streams(body: &str, stream: &StreamId) -> anyhow::Result<Option<StreamState>> {
    #[derive(Deserialize)]
    struct Line {
        id: String,
        #[serde(flatten)]
        state: StreamState,
    }
    #[derive(Deserialize)]
    struct Streams {
        streams: Vec<Line>,
    }
    let streams: Streams = serde_json::from_str(body).context("reading /api/streams")?;
    let id = stream.to_string();
    Ok(streams
        .streams
        .into_iter()
        .find(|l| l.id == id)
        .map(|l| l.state))
}

/// Waits, at most `limit`, until the relay at `addr` serves `stream` live
/// over HTTP (its first DESCRIPTOR has come and its workers said so).
pub fn wait_live(addr: SocketAddr, stream: &StreamId, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if stream_state(addr, stream)?.is_some_and(|s| s.live) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the relay's web face at {addr} did not list the stream as live within {:.0} s",
                limit.as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streams_line_is_found_by_id() {
        let id = crate::source::stream_id();
        let body = format!(
            "{{\"streams\":[{{\"id\":\"{id}\",\"live\":true,\"bitrate_bps\":3000000,\
             \"subscribers\":3,\"http_readers\":20,\"http_reader_jumps\":2,\"peers\":0}}]}}"
        );
        let state = parse_streams(&body, &id).expect("parses");
        assert_eq!(
            state,
            Some(StreamState {
                live: true,
                http_readers: 20,
                http_reader_jumps: 2
            })
        );
        assert_eq!(
            parse_streams("{\"streams\":[]}", &id).expect("parses"),
            None
        );
        assert!(parse_streams("<html>", &id).is_err());
    }
}
