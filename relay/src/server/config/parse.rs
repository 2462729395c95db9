//! Text forms of single settings: windows, addresses, stream ids, tokens,
//! log filters (times and bitrates are [`crate::units`], shared with the
//! client roles and the load tool).
//!
//! Each parser returns the reason and the fix as one phrase; the caller
//! prefixes it with the flag or file key and the value given.

use shoal_proto::StreamId;
use std::net::{SocketAddr, ToSocketAddrs};

use super::{NOMINAL_CHUNKS_PER_SEC, WINDOW_CHUNKS};
use crate::units::duration;

/// A window: a chunk count, or a time converted at
/// [`NOMINAL_CHUNKS_PER_SEC`]; either must land in [`WINDOW_CHUNKS`].
pub(super) fn window(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let range = format!(
        "must be {}..={} chunks or a time like 2s",
        WINDOW_CHUNKS.start(),
        WINDOW_CHUNKS.end()
    );
    let chunks = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<usize>().map_err(|_| range.clone())?
    } else {
        let time = duration(text).map_err(|_| range.clone())?;
        let micros = time.as_micros();
        let chunks = (micros * u128::from(NOMINAL_CHUNKS_PER_SEC) + 500_000) / 1_000_000;
        let chunks = usize::try_from(chunks).unwrap_or(usize::MAX);
        if !WINDOW_CHUNKS.contains(&chunks) {
            return Err(format!(
                "{chunks} chunks at the nominal {NOMINAL_CHUNKS_PER_SEC} chunks/s; {range}"
            ));
        }
        chunks
    };
    if WINDOW_CHUNKS.contains(&chunks) {
        Ok(chunks)
    } else {
        Err(range)
    }
}

/// `HOST:PORT`: an IP address literal, or a name resolved once, now, to
/// its first address.
/// A public base URL for the web face: `http://` or `https://`, printable
/// ASCII, at most 200 bytes (what ABOUT can carry); a `/` is added at the
/// end if missing. Empty: none.
pub(super) fn page_url(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    let text = if text.ends_with('/') {
        text.to_owned()
    } else {
        format!("{text}/")
    };
    if text == "/" {
        Ok(None)
    } else if shoal_proto::wire::is_valid_page(&text) {
        Ok(Some(text))
    } else {
        Err(format!(
            "not a page URL; use http:// or https://, no spaces, at most {} bytes, such as https://live.example.com/",
            shoal_proto::wire::PAGE_MAX_LEN
        ))
    }
}

pub(super) fn address(text: &str, example: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let fix = format!("use HOST:PORT such as {example}");
    if !text.contains(':') {
        return Err(format!("not an address; {fix}"));
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("the name has no address; {fix}")),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Err(format!("not an address; {fix}"))
        }
        Err(e) => Err(format!("cannot resolve it ({e}); {fix}")),
    }
}

/// A stream id in its printable form.
pub(super) fn stream(text: &str) -> Result<StreamId, String> {
    text.parse().map_err(|_| {
        "not a stream id (52 base32 characters, as printed by shoal keygen)".to_owned()
    })
}

/// An access token as printed by `shoal token`.
pub(super) fn token(text: &str) -> Result<Vec<u8>, String> {
    shoal_proto::token::from_text(text).map_err(|e| {
        format!("{e}; give the 152-character token printed by `shoal token --key KEY`")
    })
}

/// A `tracing` EnvFilter string, checked here so a typo fails at start.
pub(super) fn log_filter(text: &str) -> Result<String, String> {
    match tracing_subscriber::EnvFilter::try_new(text) {
        Ok(_) => Ok(text.trim().to_owned()),
        Err(e) => Err(format!(
            "not a log filter ({e}); use a level such as info or debug, or directives such as shoal_relay=debug,info"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_chunks_or_times() {
        assert_eq!(window("2048"), Ok(2048));
        assert_eq!(window("2s"), Ok(2000));
        assert_eq!(window("500ms"), Ok(500));
        assert_eq!(window("64"), Ok(64));
        assert_eq!(window("65536"), Ok(65536));
        assert!(window("63").is_err());
        assert!(window("65537").is_err());
        assert!(window("99999999999999999999999").is_err());
        let e = window("10ms").expect_err("10 chunks");
        assert!(
            e.starts_with("10 chunks at the nominal 1000 chunks/s"),
            "{e}"
        );
        assert!(window("lots").is_err());
    }

    #[test]
    fn addresses_are_literals_or_names() {
        let ex = "0.0.0.0:7400";
        assert_eq!(
            address("127.0.0.1:9", ex),
            Ok(SocketAddr::from(([127, 0, 0, 1], 9)))
        );
        assert_eq!(address("[::1]:9", ex).map(|a| a.port()), Ok(9));
        assert_eq!(address("localhost:9", ex).map(|a| a.port()), Ok(9));
        for bad in ["foo", "127.0.0.1", "1.2.3.4:99999", "foo:bar"] {
            let e = address(bad, ex).expect_err(bad);
            assert!(e.contains("HOST:PORT such as 0.0.0.0:7400"), "{bad}: {e}");
        }
    }
}
