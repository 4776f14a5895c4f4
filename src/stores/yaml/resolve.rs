//! Scalar resolution, as go-yaml v3's `resolve.go` does it (spec §8.2.2),
//! with Go's `strconv.ParseInt/ParseUint/ParseFloat` and `time.Parse`
//! semantics reproduced for the inputs go-yaml feeds them.

/// A short tag (`!!str`, ...), or a custom one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    None,
    Str,
    Int,
    Float,
    Bool,
    Null,
    Timestamp,
    Binary,
    Merge,
    Seq,
    Map,
    Other(Box<str>),
}

const LONG_PREFIX: &str = "tag:yaml.org,2002:";

impl Tag {
    /// go-yaml's `shortTag` applied to a tag as written after resolution of
    /// handles (`tag:yaml.org,2002:int` → `!!int`).
    pub fn from_full(tag: &str) -> Tag {
        let short: String;
        let t = if let Some(rest) = tag.strip_prefix(LONG_PREFIX) {
            short = format!("!!{rest}");
            short.as_str()
        } else {
            tag
        };
        match t {
            "" => Tag::None,
            "!!str" => Tag::Str,
            "!!int" => Tag::Int,
            "!!float" => Tag::Float,
            "!!bool" => Tag::Bool,
            "!!null" => Tag::Null,
            "!!timestamp" => Tag::Timestamp,
            "!!binary" => Tag::Binary,
            "!!merge" => Tag::Merge,
            "!!seq" => Tag::Seq,
            "!!map" => Tag::Map,
            other => Tag::Other(other.into()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Tag::None => "",
            Tag::Str => "!!str",
            Tag::Int => "!!int",
            Tag::Float => "!!float",
            Tag::Bool => "!!bool",
            Tag::Null => "!!null",
            Tag::Timestamp => "!!timestamp",
            Tag::Binary => "!!binary",
            Tag::Merge => "!!merge",
            Tag::Seq => "!!seq",
            Tag::Map => "!!map",
            Tag::Other(s) => s,
        }
    }

    fn resolvable(&self) -> bool {
        matches!(
            self,
            Tag::None | Tag::Str | Tag::Bool | Tag::Int | Tag::Float | Tag::Null | Tag::Timestamp
        )
    }
}

/// The Go value a scalar decodes to.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    /// The scalar text itself.
    Str,
    /// Canonical RFC 3339 (Go `RFC3339Nano`) text.
    Time(String),
}

fn hint(b: u8) -> u8 {
    match b {
        b'+' | b'-' => b'S',
        b'0'..=b'9' => b'D',
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => b'M',
        b'.' => b'.',
        _ => 0,
    }
}

fn lookup(s: &str) -> Option<(Tag, Resolved)> {
    Some(match s {
        "true" | "True" | "TRUE" => (Tag::Bool, Resolved::Bool(true)),
        "false" | "False" | "FALSE" => (Tag::Bool, Resolved::Bool(false)),
        "" | "~" | "null" | "Null" | "NULL" => (Tag::Null, Resolved::Null),
        ".nan" | ".NaN" | ".NAN" => (Tag::Float, Resolved::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => (Tag::Float, Resolved::Float(f64::INFINITY)),
        "-.inf" | "-.Inf" | "-.INF" => (Tag::Float, Resolved::Float(f64::NEG_INFINITY)),
        "<<" => (Tag::Merge, Resolved::Str),
        _ => return None,
    })
}

/// `resolve("", s)`: how an untagged plain scalar resolves.
pub fn resolve_plain(s: &str) -> (Tag, Resolved) {
    // The tag is empty, so resolution cannot fail.
    resolve(&Tag::None, s).unwrap_or((Tag::Str, Resolved::Str))
}

/// go-yaml `resolve(tag, in)`. `Err` carries go-yaml's failure text, minus
/// the scalar content (which must not appear in messages).
pub fn resolve(tag: &Tag, s: &str) -> Result<(Tag, Resolved), String> {
    if !tag.resolvable() {
        return Ok((tag.clone(), Resolved::Str));
    }
    let (rtag, out) = resolve_inner(tag, s);
    match tag {
        Tag::None | Tag::Str | Tag::Binary => Ok((rtag, out)),
        t if *t == rtag => Ok((rtag, out)),
        Tag::Float if rtag == Tag::Int => match out {
            Resolved::Int(i) => Ok((Tag::Float, Resolved::Float(i as f64))),
            _ => Err(format!("cannot decode {} as a {}", rtag.name(), tag.name())),
        },
        _ => Err(format!("cannot decode {} as a {}", rtag.name(), tag.name())),
    }
}

fn resolve_inner(tag: &Tag, s: &str) -> (Tag, Resolved) {
    let h = if s.is_empty() { b'N' } else { hint(s.as_bytes()[0]) };
    if h != 0 && *tag != Tag::Str && *tag != Tag::Binary {
        if let Some(r) = lookup(s) {
            return r;
        }
        match h {
            b'.' => {
                if let Some(f) = go_parse_float(s) {
                    return (Tag::Float, Resolved::Float(f));
                }
            }
            b'D' | b'S' => {
                if *tag == Tag::None || *tag == Tag::Timestamp {
                    if let Some(t) = parse_timestamp(s) {
                        return (Tag::Timestamp, Resolved::Time(t));
                    }
                }
                let plain: std::borrow::Cow<str> = if s.contains('_') {
                    s.replace('_', "").into()
                } else {
                    s.into()
                };
                if let Ok(i) = parse_int(&plain, 0) {
                    return (Tag::Int, Resolved::Int(i));
                }
                if let Ok(u) = parse_uint(&plain, 0) {
                    return (Tag::Int, Resolved::Uint(u));
                }
                if yaml_style_float(&plain) {
                    if let Some(f) = go_parse_float(&plain) {
                        return (Tag::Float, Resolved::Float(f));
                    }
                }
                if let Some(rest) = plain.strip_prefix("0b") {
                    if let Ok(i) = parse_int(rest, 2) {
                        return (Tag::Int, Resolved::Int(i));
                    }
                    if let Ok(u) = parse_uint(rest, 2) {
                        return (Tag::Int, Resolved::Uint(u));
                    }
                } else if let Some(rest) = plain.strip_prefix("-0b") {
                    if let Ok(i) = parse_int(&format!("-{rest}"), 2) {
                        return (Tag::Int, Resolved::Int(i));
                    }
                }
                if let Some(rest) = plain.strip_prefix("0o") {
                    if let Ok(i) = parse_int(rest, 8) {
                        return (Tag::Int, Resolved::Int(i));
                    }
                    if let Ok(u) = parse_uint(rest, 8) {
                        return (Tag::Int, Resolved::Uint(u));
                    }
                } else if let Some(rest) = plain.strip_prefix("-0o") {
                    if let Ok(i) = parse_int(&format!("-{rest}"), 8) {
                        return (Tag::Int, Resolved::Int(i));
                    }
                }
            }
            _ => {}
        }
    }
    (Tag::Str, Resolved::Str)
}

#[derive(Debug, PartialEq)]
enum NumErr {
    Syntax,
    Range,
}

/// Go `strconv.ParseUint(s, base, 64)` (base 0 = prefix detection). The
/// input never contains underscores here (go-yaml strips them first).
fn parse_uint(s: &str, base: u32) -> Result<u64, NumErr> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(NumErr::Syntax);
    }
    let mut base = base;
    let mut digits = b;
    if base == 0 {
        base = 10;
        if b[0] == b'0' {
            if b.len() >= 3 && b[1].eq_ignore_ascii_case(&b'b') {
                base = 2;
                digits = &b[2..];
            } else if b.len() >= 3 && b[1].eq_ignore_ascii_case(&b'o') {
                base = 8;
                digits = &b[2..];
            } else if b.len() >= 3 && b[1].eq_ignore_ascii_case(&b'x') {
                base = 16;
                digits = &b[2..];
            } else {
                base = 8;
                digits = &b[1..];
            }
        }
    }
    let mut n: u64 = 0;
    let mut overflow = false;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 10,
            b'A'..=b'Z' => (c - b'A') as u32 + 10,
            _ => return Err(NumErr::Syntax),
        };
        if d >= base {
            return Err(NumErr::Syntax);
        }
        if !overflow {
            match n.checked_mul(base as u64).and_then(|v| v.checked_add(d as u64)) {
                Some(v) => n = v,
                None => overflow = true,
            }
        }
    }
    if overflow {
        return Err(NumErr::Range);
    }
    Ok(n)
}

/// Go `strconv.ParseInt(s, base, 64)`.
fn parse_int(s: &str, base: u32) -> Result<i64, NumErr> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(NumErr::Syntax);
    }
    let (neg, rest) = match b[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let un = parse_uint(rest, base)?;
    let cutoff: u64 = 1 << 63;
    if !neg && un >= cutoff {
        return Err(NumErr::Range);
    }
    if neg && un > cutoff {
        return Err(NumErr::Range);
    }
    Ok(if neg { (un as i64).wrapping_neg() } else { un as i64 })
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go `strconv.ParseFloat(s, 64)` for decimal syntax: `None` on syntax
/// errors and on overflow (Go reports ErrRange there).
fn go_parse_float(s: &str) -> Option<f64> {
    // Only plain decimal forms reach here ('.'-prefixed or regex-checked);
    // reject anything Rust would accept but Go would not (inf/nan words).
    let b = s.as_bytes();
    if b.iter()
        .any(|c| !(c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')))
    {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if f.is_infinite() {
        return None;
    }
    Some(f)
}

// ---- timestamps ----

fn getnum(b: &[u8], i: &mut usize) -> Option<u32> {
    if *i >= b.len() || !b[*i].is_ascii_digit() {
        return None;
    }
    let d0 = (b[*i] - b'0') as u32;
    if *i + 1 >= b.len() || !b[*i + 1].is_ascii_digit() {
        *i += 1;
        return Some(d0);
    }
    let d1 = (b[*i + 1] - b'0') as u32;
    *i += 2;
    Some(d0 * 10 + d1)
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            if leap {
                29
            } else {
                28
            }
        }
    }
}

/// go-yaml's `parseTimestamp`: the four `time.Parse` layouts it tries,
/// returning Go's `RFC3339Nano` rendering of the result.
pub fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i != 4 || i == b.len() || b[i] != b'-' {
        return None;
    }
    let year: i64 = s[..4].parse().ok()?;
    let mut p = 5;
    let month = getnum(b, &mut p)?;
    if p >= b.len() || b[p] != b'-' {
        return None;
    }
    p += 1;
    let day = getnum(b, &mut p)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    let (mut hour, mut min, mut sec, mut nsec) = (0u32, 0u32, 0u32, 0u32);
    let mut offset: i64 = 0;
    if p < b.len() {
        let sep = b[p];
        if sep != b'T' && sep != b't' && sep != b' ' {
            return None;
        }
        p += 1;
        hour = getnum(b, &mut p)?;
        if hour >= 24 || p >= b.len() || b[p] != b':' {
            return None;
        }
        p += 1;
        min = getnum(b, &mut p)?;
        if min >= 60 || p >= b.len() || b[p] != b':' {
            return None;
        }
        p += 1;
        sec = getnum(b, &mut p)?;
        if sec >= 60 {
            return None;
        }
        // Optional fraction ('.' or ',' followed by a digit).
        if p + 1 < b.len() && (b[p] == b'.' || b[p] == b',') && b[p + 1].is_ascii_digit() {
            let st = p + 1;
            let mut e = st;
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
            let take = (e - st).min(9);
            let mut ns: u32 = 0;
            for &c in &b[st..st + take] {
                ns = ns * 10 + (c - b'0') as u32;
            }
            for _ in take..9 {
                ns *= 10;
            }
            nsec = ns;
            p = e;
        }
        if sep == b' ' {
            if p != b.len() {
                return None;
            }
        } else {
            // Zone: 'Z' or ±hh:mm.
            if p >= b.len() {
                return None;
            }
            if b[p] == b'Z' {
                p += 1;
            } else {
                if b.len() - p < 6 || b[p + 3] != b':' {
                    return None;
                }
                let sign = b[p];
                let hh = &b[p + 1..p + 3];
                let mm = &b[p + 4..p + 6];
                if !hh.iter().chain(mm.iter()).all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let hr = ((hh[0] - b'0') * 10 + (hh[1] - b'0')) as i64;
                let mi = ((mm[0] - b'0') * 10 + (mm[1] - b'0')) as i64;
                if hr > 24 || mi > 60 {
                    return None;
                }
                offset = (hr * 60 + mi) * 60;
                match sign {
                    b'+' => {}
                    b'-' => offset = -offset,
                    _ => return None,
                }
                p += 6;
            }
            if p != b.len() {
                return None;
            }
        }
    }
    if day < 1 || day > days_in(month, year) {
        return None;
    }
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{min:02}:{sec:02}");
    if nsec != 0 {
        let mut frac = format!("{nsec:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
        out.push('.');
        out.push_str(&frac);
    }
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let a = offset.abs();
        out.push_str(&format!("{sign}{:02}:{:02}", a / 3600, (a / 60) % 60));
    }
    Some(out)
}

/// go-yaml's `isOldBool`: YAML 1.1 booleans the encoder still quotes.
pub fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF"
    )
}

/// go-yaml's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
pub fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let c = b[0];
    if !(c == b'+' || c == b'-' || c.is_ascii_digit()) || !b.contains(&b':') {
        return false;
    }
    let mut i = 0;
    if b[i] == b'+' || b[i] == b'-' {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        // [0-5]?[0-9]
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() && i - st < 2 {
            i += 1;
        }
        match i - st {
            1 => {}
            2 => {
                if b[st] > b'5' {
                    // Regex backtracking: "[0-5]?[0-9]" with first digit >5
                    // can only match one digit; the next char must then be
                    // ':' or '.', not a digit.
                    i = st + 1;
                }
            }
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Resolved {
        resolve_plain(s).1
    }

    #[test]
    fn numbers() {
        assert_eq!(r("017"), Resolved::Int(15));
        assert_eq!(r("0x1F"), Resolved::Int(31));
        assert_eq!(r("1_000"), Resolved::Int(1000));
        assert_eq!(r("+5"), Resolved::Int(5));
        assert_eq!(r("0b101"), Resolved::Int(5));
        assert_eq!(r("-0b101"), Resolved::Int(-5));
        assert_eq!(r("0o17"), Resolved::Int(15));
        assert_eq!(r("09"), Resolved::Float(9.0));
        assert_eq!(r("18446744073709551615"), Resolved::Uint(u64::MAX));
        assert_eq!(r("1e20"), Resolved::Float(1e20));
        assert_eq!(r("100000000000000000000"), Resolved::Float(1e20));
        assert_eq!(r(".5"), Resolved::Float(0.5));
        assert_eq!(r("1e400"), Resolved::Str);
        assert_eq!(r("0x"), Resolved::Str);
        assert_eq!(r("-"), Resolved::Str);
        assert_eq!(r("yes"), Resolved::Str);
        assert_eq!(r("~"), Resolved::Null);
        assert_eq!(r(""), Resolved::Null);
        assert_eq!(r("-.inf"), Resolved::Float(f64::NEG_INFINITY));
        // '<' has no resolver hint: a plain `<<` resolves as a string (the
        // composer tags it !!merge separately).
        assert_eq!(resolve_plain("<<").0, Tag::Str);
    }

    #[test]
    fn timestamps() {
        assert_eq!(r("2024-01-01"), Resolved::Time("2024-01-01T00:00:00Z".into()));
        assert_eq!(
            r("2024-1-2T3:04:05.120+02:00"),
            Resolved::Time("2024-01-02T03:04:05.12+02:00".into())
        );
        assert_eq!(r("2024-01-02 03:04:05"), Resolved::Time("2024-01-02T03:04:05Z".into()));
        assert_eq!(r("2023-02-29"), Resolved::Str);
        assert_eq!(r("2024-01-02T03:04:05"), Resolved::Str);
        assert_eq!(
            r("2024-01-02T03:04:05-00:00"),
            Resolved::Time("2024-01-02T03:04:05Z".into())
        );
    }

    #[test]
    fn base60() {
        assert!(is_base60_float("1:20"));
        assert!(is_base60_float("190:20:30.15"));
        assert!(!is_base60_float("1:2a"));
        assert!(!is_base60_float("1:99"));
        assert!(is_base60_float("1:9"));
    }
}
