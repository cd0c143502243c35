//! Timestamps as the reports write them: RFC 3339 in UTC with millis.

/// Appends `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (fast path for big reports).
pub(crate) fn push_ts(out: &mut String, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let mut buf = [0u8; 24];
    let put = |buf: &mut [u8], v: i64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf[0..4], y, 4);
    buf[4] = b'-';
    put(&mut buf[5..7], m, 2);
    buf[7] = b'-';
    put(&mut buf[8..10], d, 2);
    buf[10] = b'T';
    put(&mut buf[11..13], hh, 2);
    buf[13] = b':';
    put(&mut buf[14..16], mm, 2);
    buf[16] = b':';
    put(&mut buf[17..19], ss, 2);
    buf[19] = b'.';
    put(&mut buf[20..23], milli, 3);
    buf[23] = b'Z';
    out.push_str(std::str::from_utf8(&buf).expect("ascii"));
}

/// `ms` since the epoch as an RFC 3339 string with millis.
pub(crate) fn ts(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    push_ts(&mut s, ms);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn timestamps_match_chrono() {
        for ms in [
            0i64,
            951_782_400_123,
            1_710_410_531_000,
            4_102_444_799_999,
            -1,
        ] {
            let want = Utc
                .timestamp_millis_opt(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(ts(ms), want);
        }
    }
}
