//! A small RFC 3339 timestamp parser, for `expirationTimestamp` in exec
//! plugin output.
//!
//! Accepts exactly the RFC 3339 `date-time` production, as Go's
//! `time.RFC3339` does: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`,
//! with `T` and `Z` in either case. Dates are validated (month lengths, leap
//! years); a leap second (`:60`) is accepted and counted as the next second.
//! Fractions finer than nanoseconds are truncated. Any other input is an
//! error; no input panics.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses an RFC 3339 timestamp into a [`SystemTime`].
pub(crate) fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    let b = s.as_bytes();
    let err = |what: &str| format!("`{s}` is not an RFC 3339 timestamp: {what}");
    if b.len() < 20 {
        return Err(err("too short"));
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, want: &[u8]| b.get(at).is_some_and(|c| want.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return Err(err("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return Err(err("expected digits"));
    };
    if !(1..=12).contains(&month) {
        return Err(err("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(err("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(err("time of day out of range"));
    }

    let mut i = 19;
    let mut nanos: u32 = 0;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(err("empty fraction"));
        }
        for _ in (i - start)..9 {
            nanos = nanos.saturating_mul(10);
        }
    }

    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && sep(i + 3, b":") => {
            let (Some(oh), Some(om)) = (num(i + 1, 2), num(i + 4, 2)) else {
                return Err(err("bad offset"));
            };
            if oh > 23 || om > 59 {
                return Err(err("offset out of range"));
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return Err(err("expected Z or a +HH:MM offset at the end")),
    };

    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
    };
    t.ok_or_else(|| err("out of the representable range"))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> i128 {
        let t = parse_rfc3339(s).expect(s);
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        }
    }

    #[test]
    fn valid() {
        assert_eq!(secs("1970-01-01T00:00:00Z"), 0);
        assert_eq!(secs("2000-01-01T00:00:00Z"), 946_684_800 * 1_000_000_000);
        assert_eq!(
            secs("2000-01-01T01:00:00+01:00"),
            946_684_800 * 1_000_000_000
        );
        assert_eq!(
            secs("1999-12-31t19:00:00-05:00"),
            946_684_800 * 1_000_000_000
        );
        assert_eq!(secs("2024-02-29T12:34:56.5z"), 1_709_210_096_500_000_000);
        assert_eq!(
            secs("2024-02-29T12:34:56.123456789123Z"),
            1_709_210_096_123_456_789
        );
        assert_eq!(secs("1969-12-31T23:59:59Z"), -1_000_000_000);
        assert_eq!(secs("1969-12-31T23:59:59.25Z"), -750_000_000);
        assert_eq!(secs("2016-12-31T23:59:60Z"), 1_483_228_800 * 1_000_000_000);
        assert_eq!(
            secs("9999-12-31T23:59:59Z"),
            253_402_300_799 * 1_000_000_000
        );
    }

    #[test]
    fn invalid() {
        for bad in [
            "",
            "2023",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-00-01T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:60:00Z",
            "2023-01-01 00:00:00Z",
            "2023-01-01T00:00:00",
            "2023-01-01T00:00:00.Z",
            "2023-01-01T00:00:00+0100",
            "2023-01-01T00:00:00+24:00",
            "2023-01-01T00:00:00Zjunk",
            "2023-01-01T00:00:00ü",
            "ü023-01-01T00:00:00Z",
            "+023-01-01T00:00:00Z",
            "2023-01-01T00:00:00.1234567890123456789012345Q",
        ] {
            let e = parse_rfc3339(bad).expect_err(bad);
            assert!(e.contains("is not an RFC 3339 timestamp"), "{e}");
        }
    }
}
