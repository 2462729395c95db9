//! What a relay carries, stream by stream: for its owner's status pages.

use super::Relay;
use crate::StreamId;

/// One stream as the relay carries it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream.
    pub id: StreamId,
    /// Its bitrate, from its verified DESCRIPTOR; `None` until one came
    /// (the stream is not live here yet).
    pub bitrate_bps: Option<u64>,
    /// Subscribers now.
    pub subscribers: u32,
    /// Of those, ordinary peers that forward clubs (MEMBER).
    pub peers: u32,
    /// The upload those peers still have room for (their last MEMBERs,
    /// less a club-stream per INTRODUCE since), summed, kbit/s.
    pub peer_upload_kbps: u64,
}

impl Relay {
    /// Every stream carried, with its subscribers now. Not for the data
    /// path: it walks every subscriber.
    pub fn stream_summaries(&self) -> Vec<StreamSummary> {
        let mut out: Vec<Option<StreamSummary>> = self
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let id = s.window.stream();
                (!self.free_streams.contains(&i)).then(|| StreamSummary {
                    id,
                    bitrate_bps: s.window.descriptor().map(|(d, _)| d.bitrate_bps),
                    subscribers: 0,
                    peers: 0,
                    peer_upload_kbps: 0,
                })
            })
            .collect();
        for sub in self.subs.iter().flatten() {
            if let Some(Some(s)) = out.get_mut(sub.stream) {
                s.subscribers += 1;
                if sub.member != 0 {
                    s.peers += 1;
                    s.peer_upload_kbps += u64::from(sub.upload_kbps);
                }
            }
        }
        out.into_iter().flatten().collect()
    }
}
