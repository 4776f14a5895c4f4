//! RFC 3339 timestamps the way Go's `time` package parses and prints them
//! (`lastmodified`, `created_at`, YAML timestamps, `type:time` values).

/// A parsed RFC 3339 time, kept in its original offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    /// Offset from UTC in seconds.
    pub offset: i32,
}

fn num(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

impl Timestamp {
    /// Strict RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`), as Go's
    /// `time.Parse(time.RFC3339, …)` accepts it (fraction of any length).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let mut t = Timestamp {
            year: num(&b[0..4])? as i32,
            month: num(&b[5..7])?,
            day: num(&b[8..10])?,
            hour: num(&b[11..13])?,
            minute: num(&b[14..16])?,
            second: num(&b[17..19])?,
            nanos: 0,
            offset: 0,
        };
        let mut rest = &b[19..];
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            t.nanos = frac_to_nanos(&frac[..n]);
            rest = &frac[n..];
        }
        t.offset = match rest {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let h = num(&[*h1, *h2])? as i32;
                let m = num(&[*m1, *m2])? as i32;
                if h > 23 || m > 59 {
                    return None;
                }
                let off = h * 3600 + m * 60;
                if *sign == b'-' {
                    -off
                } else {
                    off
                }
            }
            _ => return None,
        };
        t.valid().then_some(t)
    }

    pub fn valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
    }

    fn write_date_time(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
    }

    fn write_offset(&self, out: &mut String) {
        use std::fmt::Write;
        if self.offset == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let a = self.offset.unsigned_abs();
            let _ = write!(out, "{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60);
        }
    }

    /// Go `Format(time.RFC3339)`: whole seconds, original offset.
    pub fn format_rfc3339(&self) -> String {
        let mut out = String::with_capacity(25);
        self.write_date_time(&mut out);
        self.write_offset(&mut out);
        out
    }

    /// Go `Format(time.RFC3339Nano)`: fraction with trailing zeros trimmed.
    pub fn format_rfc3339_nano(&self) -> String {
        let mut out = String::with_capacity(35);
        self.write_date_time(&mut out);
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        self.write_offset(&mut out);
        out
    }

    /// The current UTC time, truncated to whole seconds.
    pub fn now_utc() -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Timestamp::from_unix(secs)
    }

    /// Seconds since the Unix epoch (the fraction is dropped).
    pub fn to_unix(&self) -> i64 {
        // Days-from-civil (Howard Hinnant's algorithm).
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
            - i64::from(self.offset)
    }

    /// The same instant in UTC.
    pub fn to_utc(&self) -> Timestamp {
        let mut t = Timestamp::from_unix(self.to_unix());
        t.nanos = self.nanos;
        t
    }

    pub fn from_unix(secs: i64) -> Timestamp {
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        // Civil-from-days (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Timestamp {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: (sod % 3600) / 60,
            second: sod % 60,
            nanos: 0,
            offset: 0,
        }
    }
}

/// Fraction digits to nanoseconds; Go reads at most 9 digits.
pub fn frac_to_nanos(digits: &[u8]) -> u32 {
    let mut n: u32 = 0;
    for i in 0..9 {
        n = n * 10 + digits.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    n
}

/// Validate an RFC 3339 text and return it as Go's `RFC3339Nano` prints it.
pub fn canonical_rfc3339(s: &str) -> Option<String> {
    Timestamp::parse_rfc3339(s).map(|t| t.format_rfc3339_nano())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reformat_keeps_offset_and_drops_fraction() {
        let t = Timestamp::parse_rfc3339("2026-11-28T17:22:54.000Z").unwrap();
        assert_eq!(t.format_rfc3339(), "2026-11-28T17:22:54Z");
        let t = Timestamp::parse_rfc3339("2026-11-28T18:22:54+01:00").unwrap();
        assert_eq!(t.format_rfc3339(), "2026-11-28T18:22:54+01:00");
        let t = Timestamp::parse_rfc3339("2024-01-02T03:04:05.120Z").unwrap();
        assert_eq!(t.format_rfc3339_nano(), "2024-01-02T03:04:05.12Z");
    }

    #[test]
    fn rejects_invalid() {
        for s in [
            "",
            "2026-11-28",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-28T17:22:54",
            "2026-11-28T17:22:54+0100",
        ] {
            assert!(Timestamp::parse_rfc3339(s).is_none(), "{s}");
        }
    }

    #[test]
    fn unix_conversion() {
        assert_eq!(Timestamp::from_unix(0).format_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(1_795_886_915).format_rfc3339(),
            "2026-11-28T17:28:35Z"
        );
        assert_eq!(
            Timestamp::from_unix(951_782_400).format_rfc3339(),
            "2000-02-29T00:00:00Z"
        );
        let t = Timestamp::parse_rfc3339("2026-11-28T18:28:35+01:00").unwrap();
        assert_eq!(t.to_unix(), 1_795_886_915);
        assert_eq!(t.to_utc().format_rfc3339(), "2026-11-28T17:28:35Z");
    }
}
