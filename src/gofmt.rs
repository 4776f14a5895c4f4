//! Number formatting exactly as Go's `strconv` / `encoding/json` print it,
//! because sops' ciphertexts, MACs and emitted files depend on those texts.

/// Shortest round-trip digits of a finite, non-zero `f` and its decimal
/// point position: `f = 0.d1d2d3… × 10^point`.
fn shortest_digits(f: f64) -> (String, i32) {
    // `{:e}` prints the shortest round-trip digits: "1.2345e6", "-5e-7".
    let s = format!("{:e}", f.abs());
    let (mantissa, exp) = s.split_once('e').expect("{:e} always prints an exponent");
    let exp: i32 = exp.parse().expect("{:e} prints a decimal exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    (digits, exp + 1)
}

fn specials(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// Go `strconv.FormatFloat(f, 'f', -1, 64)`: positional, shortest digits.
/// This is the plaintext sops encrypts and MACs for a float.
pub fn format_float_f(f: f64) -> String {
    if let Some(s) = specials(f) {
        return s.to_string();
    }
    // Rust's Display for f64 is shortest round-trip and never uses exponents.
    format!("{f}")
}

/// Go `strconv.FormatFloat(f, 'g' or 'G', -1, 64)`.
fn format_float_g_impl(f: f64, upper: bool) -> String {
    if let Some(s) = specials(f) {
        return s.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (digits, point) = shortest_digits(f);
    let exp = point - 1;
    let mut out = String::with_capacity(digits.len() + 8);
    if f < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push(if upper { 'E' } else { 'e' });
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else {
        out.push_str(&format!("{}", f.abs()));
    }
    out
}

/// Go `strconv.FormatFloat(f, 'g', -1, 64)`; go-yaml prints floats this way
/// (with `.inf`, `-.inf`, `.nan` for the specials, see [`format_float_yaml`]).
pub fn format_float_g(f: f64) -> String {
    format_float_g_impl(f, false)
}

/// How go-yaml emits a float scalar.
pub fn format_float_yaml(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_string()
    } else if f == f64::INFINITY {
        ".inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-.inf".to_string()
    } else {
        format_float_g(f)
    }
}

/// sops' `ValToString` for floats (dotenv, INI, exec-env): `'G'` format and
/// `.0` appended when the text has neither `.` nor `E`.
pub fn format_float_valtostring(f: f64) -> String {
    // sops 3.11 prints `+Inf`, `-Inf`, `NaN` without the `.0` suffix.
    if let Some(s) = specials(f) {
        return s.to_string();
    }
    let mut s = format_float_g_impl(f, true);
    if !s.contains('.') && !s.contains('E') {
        s.push_str(".0");
    }
    s
}

/// Go `encoding/json` float encoding. `None` for NaN and infinities, which
/// JSON cannot carry (`json: unsupported value`).
pub fn format_float_json(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (digits, point) = shortest_digits(f);
        let exp = point - 1;
        let mut out = String::new();
        if f < 0.0 {
            out.push('-');
        }
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        // Go prints at least two exponent digits, then strips the leading
        // zero of negative exponents only ("e-07" -> "e-7", "e+21" stays).
        let e = exp.unsigned_abs();
        if e < 10 && exp >= 0 {
            out.push('0');
        }
        out.push_str(&e.to_string());
        return Some(out);
    }
    Some(format!("{f}"))
}

#[cfg(test)]
// 3.14 is a test input here, not an approximation of π.
#[allow(clippy::approx_constant)]
mod tests {
    use super::*;

    #[test]
    fn f_format_matches_spec_table() {
        // spec §2.3 / §13.5
        assert_eq!(format_float_f(1.0), "1");
        assert_eq!(format_float_f(3.14), "3.14");
        assert_eq!(format_float_f(1e20), "100000000000000000000");
        assert_eq!(format_float_f(1.5e-7), "0.00000015");
        assert_eq!(format_float_f(-0.0), "-0");
        assert_eq!(format_float_f(f64::INFINITY), "+Inf");
        assert_eq!(format_float_f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float_f(f64::NAN), "NaN");
        assert_eq!(format_float_f(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn g_format_matches_go() {
        assert_eq!(format_float_yaml(1000000.0), "1e+06");
        assert_eq!(format_float_yaml(123456789.5), "1.234567895e+08");
        assert_eq!(format_float_yaml(1e20), "1e+20");
        assert_eq!(format_float_yaml(1.5e-7), "1.5e-07");
        assert_eq!(format_float_yaml(1e-5), "1e-05");
        assert_eq!(format_float_yaml(3e-5), "3e-05");
        assert_eq!(format_float_yaml(999999.0), "999999");
        assert_eq!(format_float_yaml(0.0001234), "0.0001234");
        assert_eq!(format_float_yaml(123456.0), "123456");
        assert_eq!(format_float_yaml(1234567.0), "1.234567e+06");
        assert_eq!(format_float_yaml(-0.0), "-0");
        assert_eq!(format_float_yaml(1e100), "1e+100");
        assert_eq!(format_float_yaml(f64::INFINITY), ".inf");
        assert_eq!(format_float_yaml(f64::NEG_INFINITY), "-.inf");
        assert_eq!(format_float_yaml(f64::NAN), ".nan");
        assert_eq!(format_float_yaml(-2.5), "-2.5");
    }

    #[test]
    fn valtostring_matches_go() {
        assert_eq!(format_float_valtostring(1.0), "1.0");
        assert_eq!(format_float_valtostring(999999.0), "999999.0");
        assert_eq!(format_float_valtostring(1000000.0), "1E+06");
        assert_eq!(format_float_valtostring(123456789.5), "1.234567895E+08");
        assert_eq!(format_float_valtostring(1e-5), "1E-05");
        assert_eq!(format_float_valtostring(1.5), "1.5");
        assert_eq!(format_float_valtostring(-0.0), "-0.0");
        assert_eq!(format_float_valtostring(f64::INFINITY), "+Inf");
        assert_eq!(format_float_valtostring(f64::NAN), "NaN");
    }

    #[test]
    fn json_format_matches_go() {
        assert_eq!(format_float_json(1.0).as_deref(), Some("1"));
        assert_eq!(format_float_json(1e20).as_deref(), Some("100000000000000000000"));
        assert_eq!(format_float_json(1e21).as_deref(), Some("1e+21"));
        assert_eq!(format_float_json(1.5e-7).as_deref(), Some("1.5e-7"));
        assert_eq!(format_float_json(1e-5).as_deref(), Some("0.00001"));
        assert_eq!(format_float_json(1.5e300).as_deref(), Some("1.5e+300"));
        assert_eq!(format_float_json(-0.0).as_deref(), Some("-0"));
        assert_eq!(format_float_json(1234567.0).as_deref(), Some("1234567"));
        assert_eq!(
            format_float_json(12345678901234567890.0).as_deref(),
            Some("12345678901234567000")
        );
        assert_eq!(format_float_json(f64::NAN), None);
    }
}
