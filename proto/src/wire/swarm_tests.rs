//! The swarm messages: HAVE, MEMBER, INTRODUCE, PUNCH (their round trips
//! and mutations run with every other type in `tests.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;
use crate::StreamId;

const STREAM: StreamId = StreamId([7; 32]);
/// The session id of the examples and of SPEC Appendix A.5 and A.6.
const SESSION: u64 = 0x0123_4567_89ab_cdef;

const INTRODUCE_V4: Introduce = Introduce {
    stream: STREAM,
    session: SESSION,
    addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 5000),
};

const INTRODUCE_V6: Introduce = Introduce {
    stream: STREAM,
    session: SESSION,
    addr: SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        6000,
    ),
};

/// One datagram of each swarm type (INTRODUCE once per family) and the
/// length its type's constant gives.
const SWARM: [(Message<'static>, usize); 5] = [
    (
        Message::Have(Have {
            stream: STREAM,
            session: SESSION,
            base: 1000,
            mask: 0b1011,
        }),
        HAVE_LEN,
    ),
    (
        Message::Member(Member {
            stream: STREAM,
            session: SESSION,
            clubs: 0b101,
            upload_kbps: 4000,
        }),
        MEMBER_LEN,
    ),
    (Message::Introduce(INTRODUCE_V4), INTRODUCE_LEN),
    (Message::Introduce(INTRODUCE_V6), INTRODUCE_LEN),
    (
        Message::Punch(Punch {
            stream: STREAM,
            seen_as: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 4000),
        }),
        PUNCH_LEN,
    ),
];

/// `msg` emitted into a buffer of exactly `buffer_len()` bytes.
fn emitted(msg: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0xA5; msg.buffer_len()];
    assert_eq!(msg.emit(&mut buf), Ok(buf.len()));
    buf
}

#[test]
fn swarm_type_bytes() {
    for (byte, ty) in [
        (0x19, MessageType::Have),
        (0x1a, MessageType::Member),
        (0x1b, MessageType::Introduce),
        (0x1c, MessageType::Punch),
    ] {
        assert_eq!(MessageType::from_byte(byte), Some(ty));
        assert_eq!(ty as u8, byte);
    }
    assert_eq!(MessageType::from_byte(0x1f), None);
}

#[test]
fn swarm_layouts() {
    let [have, member, _, _, punch] = SWARM.map(|(msg, _)| emitted(&msg));
    for (bytes, ty) in [(&have, 0x19), (&member, 0x1a), (&punch, 0x1c)] {
        assert_eq!(bytes[..4], [VERSION, ty, 0, 0]);
        assert_eq!(bytes[4..36], *STREAM.as_bytes());
    }
    // The session id right after the stream id, as in every bound message.
    assert_eq!(have[36..44], SESSION.to_be_bytes());
    assert_eq!(member[36..44], SESSION.to_be_bytes());
    assert_eq!(have[44..52], 1000u64.to_be_bytes());
    assert_eq!(have[52..], 0b1011u64.to_be_bytes());
    assert_eq!(member[44..52], 0b101u64.to_be_bytes());
    assert_eq!(member[52..], 4000u32.to_be_bytes());
    // PUNCH: who sends it, as its relay sees it, right after the stream id.
    assert_eq!(punch.len(), 55);
    assert_eq!(punch[36..41], [4, 192, 0, 2, 1]);
    assert_eq!(punch[53..], 4000u16.to_be_bytes());
}

#[test]
fn have_holds_exactly_its_set_bits() {
    let have = Have {
        stream: STREAM,
        session: SESSION,
        base: 1000,
        mask: 1 | 1 << 5 | 1 << 63,
    };
    assert!(have.holds(1000), "bit 0 is base");
    assert!(have.holds(1005));
    assert!(!have.holds(1004));
    assert!(have.holds(1063), "bit 63 is base + 63");
    assert!(!have.holds(1064), "past the window");
    assert!(!have.holds(999), "below base");
    assert!(!have.holds(0));
    // Offsets whose low bits name a set bit are still outside the window.
    assert!(!have.holds(1000 + 64 + 5));
    assert!(!have.holds(1000 + (1 << 32)));
    assert!(!have.holds(1000 + (1 << 32) + 5));
    assert!(!have.holds(u64::MAX));

    let top = Have {
        base: u64::MAX - 1,
        mask: u64::MAX,
        ..have
    };
    assert!(top.holds(u64::MAX - 1));
    assert!(top.holds(u64::MAX), "a window running past u64::MAX");
    assert!(!top.holds(0));
    assert!(!top.holds(62), "no wrap-around below base");

    let none = Have { mask: 0, ..have };
    assert!((990..1100).all(|seq| !none.holds(seq)));
}

proptest! {
    #[test]
    fn have_holds_agrees_with_its_definition(
        base: u64,
        mask: u64,
        offset in prop_oneof![0..80u64, any::<u64>()],
    ) {
        let seq = base.wrapping_add(offset);
        let have = Have { stream: STREAM, session: SESSION, base, mask };
        let i = u128::from(seq).checked_sub(u128::from(base));
        let want = i.is_some_and(|i| i < 64 && mask >> i & 1 == 1);
        prop_assert_eq!(have.holds(seq), want);
    }
}

#[test]
fn introduce_carries_an_ipv4_or_ipv6_address() {
    let v4 = emitted(&Message::Introduce(INTRODUCE_V4));
    assert_eq!(v4[..4], [VERSION, 0x1b, 0, 0]);
    assert_eq!(v4[4..36], *STREAM.as_bytes());
    assert_eq!(v4[36..44], SESSION.to_be_bytes());
    #[rustfmt::skip]
    assert_eq!(v4[44..], [
        4, 192, 0, 2, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // family, address
        0x13, 0x88, // port 5000
    ]);
    assert_eq!(Introduce::parse(&v4), Ok(INTRODUCE_V4));

    let v6 = emitted(&Message::Introduce(INTRODUCE_V6));
    #[rustfmt::skip]
    assert_eq!(v6[44..], [
        6, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // family, address
        0x17, 0x70, // port 6000
    ]);
    assert_eq!(Introduce::parse(&v6), Ok(INTRODUCE_V6));

    // An IPv4-mapped IPv6 address stays IPv6: one encoding per address.
    let mapped = Introduce {
        addr: SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped()),
            5000,
        ),
        ..INTRODUCE_V4
    };
    let bytes = emitted(&Message::Introduce(mapped));
    assert_eq!(bytes[44], 6);
    assert_eq!(Introduce::parse(&bytes), Ok(mapped));
}

#[test]
fn introduce_refuses_a_bad_address_entry() {
    let v4 = emitted(&Message::Introduce(INTRODUCE_V4));
    // The 12 bytes after an IPv4 address are padding.
    for at in 49..61 {
        let mut bytes = v4.clone();
        bytes[at] = 1;
        assert_eq!(
            Introduce::parse(&bytes),
            Err(DecodeError::Reserved),
            "padding byte {at}"
        );
    }
    // Any address bytes are fine for IPv6.
    let mut v6 = emitted(&Message::Introduce(INTRODUCE_V6));
    v6[45..61].fill(0xFF);
    assert!(Introduce::parse(&v6).is_ok());
    for family in [0, 5, 0xFF] {
        let mut bytes = v4.clone();
        bytes[44] = family;
        assert_eq!(Introduce::parse(&bytes), Err(DecodeError::Field("family")));
    }
}

#[test]
fn swarm_reserved_bytes_are_refused() {
    for (msg, _) in SWARM {
        let encoded = emitted(&msg);
        for at in 2..4 {
            for bit in 0..8 {
                let mut bytes = encoded.clone();
                bytes[at] |= 1 << bit;
                assert_eq!(
                    Message::parse(&bytes),
                    Err(DecodeError::Reserved),
                    "{msg:?}: byte {at} bit {bit}"
                );
            }
        }
    }
}

#[test]
fn swarm_wrong_lengths_are_refused() {
    for (msg, len) in SWARM {
        assert_eq!(msg.buffer_len(), len);
        let mut bytes = emitted(&msg);
        assert_eq!(bytes.len(), len);
        assert_eq!(Message::parse(&bytes), Ok(msg.clone()));
        for short in 0..len {
            assert_eq!(
                Message::parse(&bytes[..short]),
                Err(DecodeError::Truncated),
                "{msg:?} cut to {short} bytes"
            );
        }
        bytes.push(0);
        assert_eq!(Message::parse(&bytes), Err(DecodeError::TrailingBytes));
        bytes.extend([0; 19]);
        assert_eq!(Message::parse(&bytes), Err(DecodeError::TrailingBytes));
    }
}

#[test]
fn each_swarm_parser_refuses_the_other_types() {
    let [have, member, introduce, _, punch] = SWARM.map(|(msg, _)| emitted(&msg));
    assert_eq!(Have::parse(&member), Err(DecodeError::UnknownType(0x1a)));
    assert_eq!(Member::parse(&have), Err(DecodeError::UnknownType(0x19)));
    assert_eq!(
        Introduce::parse(&punch),
        Err(DecodeError::UnknownType(0x1c))
    );
    assert_eq!(
        Punch::parse(&introduce),
        Err(DecodeError::UnknownType(0x1b))
    );
}

/// SPEC Appendix A.6.
#[test]
fn swarm_test_vectors() {
    let stream = crate::integrity::PublisherKey::from_seed([7; 32]).stream_id();
    let id = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
    let hex =
        |msg: Message<'_>| -> String { emitted(&msg).iter().map(|b| format!("{b:02x}")).collect() };
    let have = Have {
        stream,
        session: SESSION,
        base: 16,
        mask: 0b1011,
    };
    let member = Member {
        stream,
        session: SESSION,
        clubs: 0b101,
        upload_kbps: 4000,
    };
    let introduce = Introduce {
        stream,
        ..INTRODUCE_V4
    };
    assert_eq!(
        hex(Message::Have(have)),
        format!("01190000{id}0123456789abcdef0000000000000010000000000000000b")
    );
    assert_eq!(
        hex(Message::Member(member)),
        format!("011a0000{id}0123456789abcdef000000000000000500000fa0")
    );
    assert_eq!(
        hex(Message::Introduce(introduce)),
        format!("011b0000{id}0123456789abcdef04c00002070000000000000000000000001388")
    );
    assert_eq!(
        hex(Message::Punch(Punch {
            stream,
            seen_as: "192.0.2.1:4000".parse().expect("addr"),
        })),
        format!("011c0000{id}04c00002010000000000000000000000000fa0")
    );
}
