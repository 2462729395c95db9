//! DHT entry records (SPEC §16): decoding any bytes never panics, an
//! accepted record is canonical, and `RecordBook` accepts only what the
//! stream key signed, unexpired, never older than what it accepted.
//!
//! Input: a mode byte, a seq byte, then the record's bytes. Mode bit 0
//! signs the bytes with the stream key (seed `[1; 32]`), so the checks
//! after the signature run; clear, the signature is the zero one. Bit 1
//! judges it at a late clock (2^40 s) instead of 0. Bit 2 first has the
//! book accept a valid record at seq 128.

#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use shoal_proto::entry::{
    EntryRecord, FoundItem, Ignored, MAX_ENTRY_POINTS, MAX_RECORD_LEN, RECORD_SALT, RecordBook,
    sign_record,
};
use shoal_proto::integrity::PublisherKey;

fuzz_target!(|input: &[u8]| {
    let Some((&[mode, seq], value)) = input.split_first_chunk::<2>() else {
        return;
    };
    let decoded = EntryRecord::decode(value);
    if let Ok(r) = &decoded {
        assert_eq!(r.encode().as_deref(), Ok(value), "canonical");
        assert!(value.len() <= MAX_RECORD_LEN);
        assert!((1..=MAX_ENTRY_POINTS).contains(&r.entry_points.len()));
    }

    let key = PublisherKey::from_seed([1; 32]);
    let stream = key.stream_id();
    let mut book = RecordBook::new(stream);
    let mut seen = None;
    if mode & 4 != 0 {
        let earlier = EntryRecord {
            descriptor_hash: [0; 32],
            expires: u64::MAX,
            entry_points: vec![SocketAddr::from(([192, 0, 2, 1], 4000))],
        }
        .encode()
        .expect("a valid record encodes");
        let item = FoundItem {
            key: *stream.as_bytes(),
            salt: Some(RECORD_SALT),
            seq: 128,
            value: &earlier,
            signature: sign_record(&key, 128, &earlier),
        };
        assert!(book.consider(0, &item).is_ok());
        seen = Some(128);
    }
    let seq = i64::from(seq);
    let signature = if mode & 1 != 0 {
        sign_record(&key, seq, value)
    } else {
        [0; 64]
    };
    let item = FoundItem {
        key: *stream.as_bytes(),
        salt: Some(RECORD_SALT),
        seq,
        value,
        signature,
    };
    let now = if mode & 2 != 0 { 1 << 40 } else { 0 };
    match book.consider(now, &item) {
        Ok(r) => {
            assert_eq!(mode & 1, 1, "only a signed record is accepted");
            assert_eq!(decoded.as_ref(), Ok(&r));
            assert!(now < r.expires);
            assert!(seen.is_none_or(|s| seq >= s));
            assert_eq!(book.newest_seq(), Some(seq));
        }
        Err(why) => {
            assert_eq!(book.newest_seq(), seen, "an ignored record changes nothing");
            match why {
                Ignored::Malformed(e) => assert_eq!(decoded, Err(e)),
                Ignored::Older { seq: s, seen: n } => {
                    assert_eq!((Some(s), Some(n)), (Some(seq), seen));
                    assert!(s < n);
                }
                Ignored::Expired { ago_s } => {
                    let r = decoded.expect("only a decoded record expires");
                    assert_eq!(now - r.expires, ago_s);
                }
                Ignored::BadSignature => assert_eq!(mode & 1, 0),
                Ignored::OtherKey | Ignored::WrongSalt => panic!("key and salt are right"),
            }
        }
    }
});
