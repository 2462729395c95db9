//! A reader's side of `GET /streams/<ID>.ts`: the answer's head, then the
//! chunked body with its framing taken off, then the TS packets in it
//! looked at for the source's stamps ([`crate::ts::stamp`]). Counted as it
//! streams past, never stored: a reader keeps a few dozen bytes of state
//! however much arrives.

use shoal_proto::ts::TS_PACKET_LEN;

use crate::ts::{STAMP_END, stamp};

/// Longest head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// Most hex digits of a chunk size (a 60-bit size).
const MAX_SIZE_DIGITS: u8 = 15;

/// What is wrong with an answer.
pub type Malformed = &'static str;

/// One answer, fed as it arrives.
#[derive(Debug)]
pub struct Answer {
    part: Part,
    /// The head, until it is complete.
    head: Vec<u8>,
    /// The status code, once the head is in.
    status: Option<u16>,
    /// Body bytes so far, framing off.
    body_bytes: u64,
    packets: PacketScan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Head,
    /// A chunk-size line: the size so far, its digits, and whether an
    /// extension (after `;`) is being skipped.
    Size {
        size: u64,
        digits: u8,
        extension: bool,
    },
    /// This many bytes of a chunk's data to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// A body without chunked framing (an error page): all of it counts.
    Plain,
    /// After the last chunk: nothing more is looked at.
    Done,
}

/// Where the body is in its TS packets, and the head of the current one.
#[derive(Debug, Default)]
struct PacketScan {
    /// Bytes of the current packet seen.
    at: usize,
    head: [u8; STAMP_END],
}

impl Default for Answer {
    fn default() -> Self {
        Self {
            part: Part::Head,
            head: Vec::new(),
            status: None,
            body_bytes: 0,
            packets: PacketScan::default(),
        }
    }
}

impl Answer {
    /// The status code, once the head is in.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Body bytes so far, framing off.
    #[cfg(test)]
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Whether the last chunk has come: the answer is over.
    pub fn done(&self) -> bool {
        self.part == Part::Done
    }

    /// Takes the next bytes of the answer; calls `on_stamp` with the stamp
    /// of each frame that begins in them. Returns the body bytes among
    /// them.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        on_stamp: &mut impl FnMut(u64),
    ) -> Result<u64, Malformed> {
        let before = self.body_bytes;
        while !bytes.is_empty() {
            bytes = match self.part {
                Part::Head => self.take_head(bytes)?,
                Part::Size {
                    size,
                    digits,
                    extension,
                } => {
                    let byte = bytes[0];
                    self.part = match (byte, extension) {
                        (b'\n', _) if size == 0 => Part::Done,
                        (b'\n', _) => Part::Data(size),
                        (b'\r', _) | (_, true) => self.part,
                        (b';', false) => Part::Size {
                            size,
                            digits,
                            extension: true,
                        },
                        (_, false) => {
                            let digit = char::from(byte)
                                .to_digit(16)
                                .ok_or("a chunk size that is not hex")?;
                            if digits == MAX_SIZE_DIGITS {
                                return Err("a chunk size of more than 15 hex digits");
                            }
                            Part::Size {
                                size: size << 4 | u64::from(digit),
                                digits: digits + 1,
                                extension: false,
                            }
                        }
                    };
                    &bytes[1..]
                }
                Part::Data(left) => {
                    let take = usize::try_from(left).map_or(bytes.len(), |l| l.min(bytes.len()));
                    self.packets.feed(&bytes[..take], on_stamp);
                    self.body_bytes += take as u64;
                    let left = left - take as u64;
                    self.part = if left == 0 {
                        Part::DataEnd
                    } else {
                        Part::Data(left)
                    };
                    &bytes[take..]
                }
                Part::DataEnd => {
                    match bytes[0] {
                        b'\r' => {}
                        b'\n' => {
                            self.part = Part::Size {
                                size: 0,
                                digits: 0,
                                extension: false,
                            }
                        }
                        _ => return Err("no CRLF after a chunk's data"),
                    }
                    &bytes[1..]
                }
                Part::Plain => {
                    self.body_bytes += bytes.len() as u64;
                    &[]
                }
                Part::Done => &[],
            };
        }
        Ok(self.body_bytes - before)
    }

    /// Adds to the head; once it is whole, reads it and returns what
    /// follows it.
    fn take_head<'a>(&mut self, bytes: &'a [u8]) -> Result<&'a [u8], Malformed> {
        let before = self.head.len();
        // The end may straddle two reads: look from a little before.
        let from = before.saturating_sub(3);
        let room = MAX_HEAD.saturating_sub(before);
        self.head
            .extend_from_slice(bytes.get(..room).unwrap_or(bytes));
        let Some(end) = self.head[from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| from + at + 4)
        else {
            if self.head.len() >= MAX_HEAD {
                return Err("a head longer than 8 KiB");
            }
            return Ok(&[]);
        };
        let head = std::str::from_utf8(&self.head[..end]).map_err(|_| "a head that is not text")?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .filter(|l| l.starts_with("HTTP/1."))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or("no HTTP/1.x status line")?;
        let chunked = lines.any(|l| {
            l.split_once(':').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("transfer-encoding")
                    && value.trim().eq_ignore_ascii_case("chunked")
            })
        });
        self.status = Some(status);
        self.part = if chunked {
            Part::Size {
                size: 0,
                digits: 0,
                extension: false,
            }
        } else {
            Part::Plain
        };
        self.head = Vec::new();
        // The end was not in the earlier reads: it is in this one.
        Ok(&bytes[end - before..])
    }
}

impl PacketScan {
    /// The body's next bytes: whole 188-byte packets from its start (the
    /// web face sends nothing else).
    fn feed(&mut self, mut bytes: &[u8], on_stamp: &mut impl FnMut(u64)) {
        while !bytes.is_empty() {
            if self.at < STAMP_END {
                let take = (STAMP_END - self.at).min(bytes.len());
                self.head[self.at..self.at + take].copy_from_slice(&bytes[..take]);
                self.at += take;
                bytes = &bytes[take..];
                if self.at == STAMP_END
                    && let Some(s) = stamp(&self.head)
                {
                    on_stamp(s);
                }
            } else {
                let take = (TS_PACKET_LEN - self.at).min(bytes.len());
                self.at += take;
                bytes = &bytes[take..];
            }
            if self.at == TS_PACKET_LEN {
                self.at = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::StampedTs;

    /// `body` as hyper frames it: a chunk per piece, then the last chunk.
    fn chunked(pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: video/mp2t\r\n\
                        Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        for p in pieces {
            out.extend_from_slice(format!("{:X}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    /// Feeds `wire` in pieces of `step` bytes; returns the answer and the
    /// stamps seen.
    fn read(wire: &[u8], step: usize) -> (Answer, Vec<u64>) {
        let mut answer = Answer::default();
        let mut stamps = Vec::new();
        let mut body = 0;
        for piece in wire.chunks(step) {
            body += answer
                .feed(piece, &mut |s| stamps.push(s))
                .expect("well formed");
        }
        assert_eq!(body, answer.body_bytes());
        (answer, stamps)
    }

    #[test]
    fn framing_off_and_stamps_found_however_the_bytes_are_split() {
        let mut ts = StampedTs::new(30);
        let mut stream = Vec::new();
        for f in 0..3 {
            ts.frame(5 * TS_PACKET_LEN, 100 + f, &mut stream);
        }
        // Cut across packets, as the feed's chunks never are; the scan
        // must not care.
        let pieces: Vec<&[u8]> = stream.chunks(1000).collect();
        let wire = chunked(&pieces);
        for step in [1, 7, 188, 4096, wire.len()] {
            let (answer, stamps) = read(&wire, step);
            assert_eq!(answer.status(), Some(200));
            assert_eq!(answer.body_bytes(), stream.len() as u64, "step {step}");
            assert_eq!(stamps, [100, 101, 102], "step {step}");
            assert!(answer.done());
        }
    }

    #[test]
    fn an_error_page_has_a_status_and_a_plain_body() {
        let wire = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\n\r\nbusy\n";
        let (answer, stamps) = read(wire, 10);
        assert_eq!(answer.status(), Some(503));
        assert_eq!(answer.body_bytes(), 5);
        assert!(stamps.is_empty() && !answer.done());
    }

    #[test]
    fn chunk_extensions_are_skipped_and_bad_framing_refused() {
        let wire =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n";
        let (answer, _) = read(wire, 3);
        assert_eq!(answer.body_bytes(), 3);
        assert!(answer.done());

        let mut answer = Answer::default();
        let bad = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
        assert!(answer.feed(bad, &mut |_| {}).is_err());
        let mut answer = Answer::default();
        assert!(answer.feed(b"SSH-2.0\r\n\r\n", &mut |_| {}).is_err());
        let mut answer = Answer::default();
        let endless = vec![b'x'; MAX_HEAD + 1];
        assert!(answer.feed(&endless, &mut |_| {}).is_err());
    }
}
