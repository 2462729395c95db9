//! Text forms of times and bitrates, one grammar for every command line
//! and file: `shoal relay`'s flags and `relay.toml`, the client roles'
//! flags, and `shoal-bench`.
//!
//! A time always carries its unit (`10` is refused, not taken as seconds),
//! so that no one has to guess which unit a bare number means. Each parser
//! returns the reason and the fix as one phrase; the caller prefixes it
//! with the flag or file key and the value given.

use std::time::Duration;

const TIME_FIX: &str = "use a number and a unit such as 500ms, 2s or 1m";

/// A time such as `500ms`, `2s`, `1.5s` or `1m` (units `us`, `ms`, `s`,
/// `m`, `h`). Decimals are exact: `0.3s` is 300 ms, not a float's guess.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_nanos: u128 = match unit.trim() {
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" if !number.is_empty() => return Err(format!("no unit; {TIME_FIX}")),
        _ => return Err(format!("not a time; {TIME_FIX}")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits_ok(whole) || !digits_ok(fraction) {
        return Err(format!("not a time; {TIME_FIX}"));
    }
    // Beyond 12 decimals nothing is left to represent in nanoseconds.
    let fraction = fraction.get(..fraction.len().min(12)).unwrap_or(fraction);
    let too_long = || format!("too long; {TIME_FIX}");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_long())?
    };
    let fraction_nanos = if fraction.is_empty() {
        0
    } else {
        let value: u128 = fraction.parse().map_err(|_| too_long())?;
        value * unit_nanos / 10u128.pow(fraction.len() as u32)
    };
    let nanos = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_nanos))
        .ok_or_else(too_long)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Bits per second from `3Mbit`, `500kbit`, `1.5Gbit`, `3Mbps`, `3M` or a
/// plain number, from 1 kbit/s to 400 Gbit/s. Prefixes are decimal
/// (k = 1000).
pub fn bitrate(text: &str) -> Result<u64, String> {
    const HINT: &str = "use a rate such as 3Mbit, 500kbit, 1Gbit or 3000000 (bits per second)";
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| HINT.to_owned())?;
    let unit = unit.trim();
    let lower = unit.to_ascii_lowercase();
    let scale = match lower.chars().next() {
        None => 1.0,
        Some('k') => 1e3,
        Some('m') => 1e6,
        Some('g') => 1e9,
        Some('b') => 1.0,
        Some(_) => return Err(format!("unknown unit {unit:?}; {HINT}")),
    };
    let rest = match lower.chars().next() {
        Some('k' | 'm' | 'g') => &lower[1..],
        _ => &lower[..],
    };
    if !matches!(rest, "" | "bit" | "bits" | "bps" | "b/s" | "bit/s") {
        return Err(format!("unknown unit {unit:?}; {HINT}"));
    }
    let bps = value * scale;
    if !bps.is_finite() || bps < 1000.0 {
        return Err(format!("at least 1kbit; {HINT}"));
    }
    if bps > 400e9 {
        return Err(format!("at most 400Gbit; {HINT}"));
    }
    Ok(bps.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_exactly() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("500ms", ms(500)),
            ("2s", ms(2000)),
            ("1.5s", ms(1500)),
            ("0.3s", ms(300)),
            (".5s", ms(500)),
            ("1m", ms(60_000)),
            ("1 min", ms(60_000)),
            ("1h", ms(3_600_000)),
            ("250us", Duration::from_micros(250)),
            (" 3s ", ms(3000)),
        ] {
            assert_eq!(duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_times_say_why() {
        for (text, why) in [
            ("1", "no unit"),
            ("", "not a time"),
            ("s", "not a time"),
            ("1x", "not a time"),
            ("1.2.3s", "not a time"),
            ("-1s", "not a time"),
            ("99999999999999999999999999999999999999999h", "too long"),
        ] {
            let e = duration(text).expect_err(text);
            assert!(e.starts_with(why), "{text}: {e}");
            assert!(e.contains("500ms"), "{text}: {e}");
        }
    }

    #[test]
    fn bitrates_take_decimal_prefixes() {
        assert_eq!(bitrate("3Mbit"), Ok(3_000_000));
        assert_eq!(bitrate("500kbit"), Ok(500_000));
        assert_eq!(bitrate("1Gbit"), Ok(1_000_000_000));
        assert_eq!(bitrate("1.5Mbit"), Ok(1_500_000));
        assert_eq!(bitrate("3mbps"), Ok(3_000_000));
        assert_eq!(bitrate("3 M"), Ok(3_000_000));
        assert_eq!(bitrate("2500000"), Ok(2_500_000));
        assert_eq!(bitrate("2500000bit/s"), Ok(2_500_000));
    }

    #[test]
    fn bad_bitrates_say_what_to_write() {
        for bad in ["", "fast", "3Xbit", "3Mbyte", "10", "-3Mbit", "1e3Gbit"] {
            let err = bitrate(bad).expect_err(bad);
            assert!(err.contains("3Mbit"), "{bad}: {err}");
        }
    }
}
