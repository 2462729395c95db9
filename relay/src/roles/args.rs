//! Flag parsers the client roles (`watch`, `peer`) share. Each error is one
//! line that names the flag, the value given, and the fix.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use shoal_proto::StreamId;

/// `--stream`: a stream id as printed by `shoal keygen`.
pub(super) fn parse_stream(text: &str) -> anyhow::Result<StreamId> {
    text.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "--stream {text:?}: not a stream id (52 base32 characters, as printed by shoal keygen)"
        )
    })
}

/// `--relay`: `HOST:PORT`, optionally as `shoal://HOST:PORT` or
/// `udp://HOST:PORT`; a name is resolved once, now.
pub(super) fn parse_relay(text: &str) -> anyhow::Result<SocketAddr> {
    let fix = "use HOST:PORT such as 203.0.113.7:7400 or relay.example.net:7400";
    let bad = |why: &str| anyhow::anyhow!("--relay {text:?}: {why}; {fix}");
    let trimmed = text.trim();
    let bare = match trimmed.split_once("://") {
        Some(("shoal" | "udp", rest)) => rest.trim_end_matches('/'),
        Some((scheme, _)) => return Err(bad(&format!("unknown scheme {scheme}://"))),
        None => trimmed,
    };
    if let Ok(addr) = bare.parse::<SocketAddr>() {
        return check_port(addr).map_err(&bad);
    }
    if bare.is_empty() || bare.contains('/') || !bare.contains(':') {
        return Err(bad("not an address"));
    }
    match bare.to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(addr) => check_port(addr).map_err(&bad),
            None => Err(bad("the name has no address")),
        },
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Err(bad("not an address")),
        Err(e) => Err(bad(&format!("cannot resolve it ({e})"))),
    }
}

fn check_port(addr: SocketAddr) -> Result<SocketAddr, &'static str> {
    if addr.port() == 0 {
        Err("port 0 is not a relay's port")
    } else if addr.ip().is_unspecified() {
        Err("an unspecified address (0.0.0.0 or ::) is not a relay")
    } else {
        Ok(addr)
    }
}

/// `--token`: an access token as printed by `shoal token`, checked here
/// against the stream and the local clock so that a wrong one fails at
/// start rather than at the relay.
pub(super) fn parse_token(text: &str, stream: &StreamId) -> anyhow::Result<Vec<u8>> {
    use shoal_proto::token::{self, Token, TokenError};
    let bytes = token::from_text(text).map_err(|e| {
        anyhow::anyhow!(
            "--token: {e}; give the 152-character token printed by `shoal token --key KEY`"
        )
    })?;
    let t = Token::parse(&bytes).map_err(|e| anyhow::anyhow!("--token: {e}"))?;
    if t.stream != *stream {
        anyhow::bail!(
            "--token: it was made for stream {}, not --stream {stream}; ask that stream's \
             owner for a token",
            t.stream
        );
    }
    let now = crate::os::unix_secs();
    if now >= t.expires {
        anyhow::bail!(
            "--token: {} ({} s ago); ask the stream's owner for a new one",
            TokenError::Expired,
            now - t.expires
        );
    }
    Ok(bytes)
}

/// `--latency`: a positive time such as `500ms`, `2s`, `1.5s` or `800us`.
pub(super) fn parse_latency(text: &str) -> anyhow::Result<Duration> {
    let latency =
        crate::units::duration(text).map_err(|why| anyhow::anyhow!("--latency {text:?}: {why}"))?;
    if latency.is_zero() {
        anyhow::bail!("--latency {text:?}: must be more than zero; try 500ms");
    }
    Ok(latency)
}

/// `--wait`: a time; 0 (with or without a unit) waits for ever.
pub(super) fn parse_wait(text: &str) -> anyhow::Result<Duration> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    crate::units::duration(text).map_err(|why| anyhow::anyhow!("--wait {text:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_parses() {
        let ok = |t: &str| parse_latency(t).ok();
        assert_eq!(ok("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(ok("2s"), Some(Duration::from_secs(2)));
        assert_eq!(ok("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(ok("0.3s"), Some(Duration::from_millis(300)));
        assert_eq!(ok("800us"), Some(Duration::from_micros(800)));
        for bad in ["", "500", "ms", "0ms", "1.2.3s", "-1s", "5 parsecs"] {
            assert!(parse_latency(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wait_parses() {
        assert_eq!(parse_wait("10s").ok(), Some(Duration::from_secs(10)));
        assert_eq!(parse_wait("0s").ok(), Some(Duration::ZERO));
        let err = parse_wait("soon").expect_err("not a time").to_string();
        assert!(err.starts_with("--wait \"soon\""), "{err}");
    }

    #[test]
    fn relay_parses() {
        let v4: SocketAddr = "127.0.0.1:7400".parse().expect("addr");
        assert_eq!(parse_relay("127.0.0.1:7400").ok(), Some(v4));
        assert_eq!(parse_relay("shoal://127.0.0.1:7400/").ok(), Some(v4));
        assert_eq!(parse_relay("udp://127.0.0.1:7400").ok(), Some(v4));
        assert_eq!(
            parse_relay("[::1]:7400").ok(),
            Some("[::1]:7400".parse().expect("addr"))
        );
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "0.0.0.0:7400",
            "http://127.0.0.1:7400",
            "no such host",
            "127.0.0.1:99999",
        ] {
            let err = parse_relay(bad).expect_err(bad).to_string();
            assert!(err.starts_with("--relay"), "{err}");
        }
    }
}
