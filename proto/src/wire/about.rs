//! Asking a server about itself: QUERY and ABOUT (SPEC §6.14, §6.15).
//!
//! A publisher sends no handshake, so it learns what a relay offers
//! besides the stream (today: the address of its web page) by QUERY. The
//! answer, ABOUT, is always shorter than the QUERY it answers, which is
//! padded for that, so a spoofed QUERY cannot be turned into an amplified
//! flood (§11.1); no cookie round trip is needed.
//!
//! ```text
//! QUERY (256 bytes, zero-padded)         ABOUT (13 + page_len bytes, at most 213)
//!  0 version  1 0x1d  2 reserved u16     0 version  1 0x1e  2 http_port u16
//!  4 nonce u64                           4 nonce u64 (echoed from QUERY)
//! 12 zero padding                       12 page_len u8 (0..=200)
//!                                       13 page (UTF-8 URL, page_len bytes)
//! ```

use super::cursor::{BufferTooSmall, Writer};
use super::{DecodeError, MessageType, header, put_header};

/// Length of QUERY: longer than the longest ABOUT, so the answer never
/// amplifies.
pub const QUERY_LEN: usize = 256;
/// Longest page URL an ABOUT carries.
pub const PAGE_MAX_LEN: usize = 200;
const QUERY_FIXED_LEN: usize = 12;
const ABOUT_FIXED_LEN: usize = 13;
// The longest ABOUT is shorter than a QUERY: answering never amplifies.
const _: () = assert!(ABOUT_FIXED_LEN + PAGE_MAX_LEN < QUERY_LEN);

/// QUERY: what does this server offer?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// The asker's random value, echoed in ABOUT.
    pub nonce: u64,
}

impl Query {
    /// Parses a QUERY: exactly [`QUERY_LEN`] bytes, padding all zero.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Query)?;
        r.reserved(2)?;
        let nonce = r.u64()?;
        r.reserved(QUERY_LEN - QUERY_FIXED_LEN)?;
        r.finish()?;
        Ok(Self { nonce })
    }

    /// Bytes [`Query::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        QUERY_LEN
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, QUERY_LEN)?;
        put_header(&mut w, MessageType::Query);
        w.zeros(2);
        w.u64(self.nonce);
        w.zeros(QUERY_LEN - QUERY_FIXED_LEN);
        Ok(w.finish())
    }
}

/// ABOUT: the server's answer to a QUERY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct About<'a> {
    /// The QUERY's nonce.
    pub nonce: u64,
    /// The TCP port of the server's web face on the address the QUERY
    /// went to; 0 when it has none.
    pub http_port: u16,
    /// The web face's base URL as its operator gave it (behind a proxy, a
    /// name, TLS), at most [`PAGE_MAX_LEN`] bytes; empty when none was
    /// given, and then the asker builds `http://<server address>:<http_port>/`.
    /// Unchecked bytes: see [`About::page_url`].
    pub page: &'a [u8],
}

impl<'a> About<'a> {
    /// Parses an ABOUT.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::About)?;
        let http_port = r.u16()?;
        let nonce = r.u64()?;
        let len = usize::from(r.u8()?);
        if len > PAGE_MAX_LEN {
            return Err(DecodeError::Field("page_len"));
        }
        let page = r.take(len)?;
        r.finish()?;
        Ok(Self {
            nonce,
            http_port,
            page,
        })
    }

    /// Bytes [`About::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        ABOUT_FIXED_LEN + self.page.len().min(PAGE_MAX_LEN)
    }

    /// Writes the datagram into `out`, returning its length. A page longer
    /// than [`PAGE_MAX_LEN`] is left out (the caller checks it at start).
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let page = if self.page.len() > PAGE_MAX_LEN {
            &[][..]
        } else {
            self.page
        };
        let mut w = Writer::new(out, ABOUT_FIXED_LEN + page.len())?;
        put_header(&mut w, MessageType::About);
        w.u16(self.http_port);
        w.u64(self.nonce);
        w.u8(page.len() as u8);
        w.put(page);
        Ok(w.finish())
    }

    /// The page URL, if the server gave one that is safe to show: UTF-8,
    /// `http://` or `https://`, no spaces or control characters (it goes
    /// to a terminal). `None` for an empty page or any other bytes.
    pub fn page_url(&self) -> Option<&'a str> {
        let text = std::str::from_utf8(self.page).ok()?;
        let scheme = text.starts_with("http://") || text.starts_with("https://");
        let clean = text.chars().all(|c| c.is_ascii_graphic());
        (scheme && clean).then_some(text)
    }
}

/// Whether `url` can go in an ABOUT: what [`About::page_url`] accepts, and
/// ending in `/`, since the asker appends `watch/<STREAM_ID>` to it.
pub fn is_valid_page(url: &str) -> bool {
    let about = About {
        nonce: 0,
        http_port: 0,
        page: url.as_bytes(),
    };
    url.len() <= PAGE_MAX_LEN && about.page_url().is_some() && url.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Message;

    fn round_trip(m: &Message<'_>) -> Vec<u8> {
        let mut out = vec![0; m.buffer_len()];
        let n = m.emit(&mut out).expect("fits");
        out.truncate(n);
        assert_eq!(&Message::parse(&out).expect("parses"), m);
        out
    }

    #[test]
    fn query_and_about_round_trip() {
        let q = round_trip(&Message::Query(Query { nonce: 7 }));
        assert_eq!(q.len(), QUERY_LEN);
        let page = b"https://live.example.com/";
        let a = round_trip(&Message::About(About {
            nonce: 7,
            http_port: 8080,
            page,
        }));
        assert_eq!(a.len(), ABOUT_FIXED_LEN + page.len());
    }

    #[test]
    fn cut_or_dirty_queries_are_refused() {
        let mut q = vec![0; QUERY_LEN];
        Query { nonce: 1 }.emit(&mut q).expect("fits");
        assert_eq!(
            Query::parse(&q[..QUERY_LEN - 1]),
            Err(DecodeError::Truncated)
        );
        q[100] = 1;
        assert_eq!(Query::parse(&q), Err(DecodeError::Reserved));
    }

    #[test]
    fn an_about_with_a_long_or_cut_page_is_refused() {
        let mut a = vec![0; ABOUT_FIXED_LEN + 10];
        About {
            nonce: 1,
            http_port: 1,
            page: b"http://a/x",
        }
        .emit(&mut a)
        .expect("fits");
        assert_eq!(About::parse(&a[..a.len() - 1]), Err(DecodeError::Truncated));
        a[12] = 201;
        assert_eq!(About::parse(&a), Err(DecodeError::Field("page_len")));
    }

    #[test]
    fn only_clean_http_urls_are_shown() {
        let page = |p: &'static [u8]| {
            About {
                nonce: 0,
                http_port: 0,
                page: p,
            }
            .page_url()
        };
        assert_eq!(page(b"http://a.example/"), Some("http://a.example/"));
        assert_eq!(page(b"https://a.example/x/"), Some("https://a.example/x/"));
        assert_eq!(page(b""), None);
        assert_eq!(page(b"ftp://a.example/"), None);
        assert_eq!(page(b"http://a.example/\x1b[2J"), None);
        assert_eq!(page(b"http://a b/"), None);
        assert_eq!(page(b"http://\xff/"), None);
        assert!(is_valid_page("https://live.example.com/"));
        assert!(!is_valid_page("https://live.example.com"));
        assert!(!is_valid_page(&format!("http://{}/", "a".repeat(200))));
    }
}
