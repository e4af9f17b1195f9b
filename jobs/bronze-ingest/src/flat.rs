//! The fast reader for what nearly every landed line is: one flat JSON
//! object of strings without escapes, plain numbers, booleans and nulls.
//!
//! It gives up (`None`) on anything else, and the full reader (serde_json)
//! then reads the line or rejects it with its message. So it only has to be
//! right about what it accepts: exactly the values serde_json would give.
//! It gives up on an escape or a control character in a string, a nested
//! value, a duplicate field (`field` says so), a number serde_json might
//! round differently (more than 15 significant digits, a power of ten past
//! 10^22, `-0`), and any syntax error. `parse_line` took 15.7k
//! instructions a line with serde_json alone (45 % of bronze's), 9.3k with
//! this reader in front (README, Benchmark).

use std::borrow::Cow;

use crate::parse::Loose;

/// Reads `line` as one flat object, handing each key and value to `field`
/// in order; `field` returns false to give up. `None` when the line is not
/// in the subset this reader takes.
// Here and on `value`: one call site, run for every field of every line;
// out of line they cost bronze 3 % more instructions.
#[inline(always)]
pub(crate) fn read_flat<'a>(line: &'a str, mut field: impl FnMut(&'a str, Loose<'a>) -> bool) -> Option<()> {
    let b = line.as_bytes();
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_space(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (key, after) = string(line, i + 1)?;
            i = skip_space(b, after);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let (value, after) = value(line, skip_space(b, i + 1))?;
            if !field(key, value) {
                return None;
            }
            i = skip_space(b, after);
            match b.get(i) {
                Some(b',') => i = skip_space(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_space(b, i) == b.len()).then_some(())
}

/// The index of the first byte from `i` that is not JSON whitespace.
fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The string that starts at `start` (after its opening quote) and the
/// index after its closing quote.
fn string(line: &str, start: usize) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    let mut i = start;
    // Eight bytes at a time up to the first quote, backslash or control
    // character: the byte loop alone was a third of this reader's time.
    while let Some(eight) = b.get(i..i + 8) {
        let word = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
        let found = zero_bytes(word ^ (ONES * u64::from(b'"'))) | zero_bytes(word ^ (ONES * u64::from(b'\\'))) | bytes_below(word, 0x20);
        if found != 0 {
            i += (found.trailing_zeros() / 8) as usize;
            break;
        }
        i += 8;
    }
    loop {
        match *b.get(i)? {
            b'"' => return Some((&line[start..i], i + 1)),
            b'\\' | 0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// `0x01` in every byte.
const ONES: u64 = u64::from_ne_bytes([1; 8]);

/// The high bit of each zero byte of `word` set, and of no byte below the
/// lowest zero byte (above it a borrow may set more, so only the lowest set
/// bit is exact).
fn zero_bytes(word: u64) -> u64 {
    bytes_below(word, 1)
}

/// As `zero_bytes`, for the bytes below `limit` (at most 0x80).
fn bytes_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & (ONES << 7)
}

/// The value that starts at `i` and the index after it.
#[inline(always)]
fn value(line: &str, i: usize) -> Option<(Loose<'_>, usize)> {
    let b = line.as_bytes();
    let literal = |word: &[u8], value: Loose<'static>| b[i..].starts_with(word).then_some((value, i + word.len()));
    match *b.get(i)? {
        b'"' => string(line, i + 1).map(|(text, after)| (Loose::Text(Cow::Borrowed(text)), after)),
        b't' => literal(b"true", Loose::Bool(true)),
        b'f' => literal(b"false", Loose::Bool(false)),
        b'n' => literal(b"null", Loose::Null),
        b'-' | b'0'..=b'9' => number(b, i),
        _ => None,
    }
}

/// Powers of ten an `f64` holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/// A JSON number as serde_json reads it: a whole number without fraction
/// or exponent is an exact integer, anything else an `f64`. The `f64` is
/// one exact significand (below 2^53) multiplied or divided by one exact
/// power of ten, which IEEE rounds correctly; serde_json does the same
/// operation there, and rounds its own way only beyond it.
fn number(b: &[u8], mut i: usize) -> Option<(Loose<'static>, usize)> {
    let negative = b[i] == b'-';
    i += usize::from(negative);
    let whole_start = i;
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits_end(b, i),
        _ => return None,
    }
    let whole = &b[whole_start..i];
    let mut fraction: &[u8] = &[];
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = digits_end(b, start);
        fraction = &b[start..i];
        if fraction.is_empty() {
            return None;
        }
    }
    let mut exponent: i32 = 0;
    let has_exponent = matches!(b.get(i), Some(b'e' | b'E'));
    if has_exponent {
        i += 1;
        let exponent_negative = b.get(i) == Some(&b'-');
        i += usize::from(matches!(b.get(i), Some(b'-' | b'+')));
        let start = i;
        i = digits_end(b, start);
        if i == start || i - start > 4 {
            return None;
        }
        exponent = b[start..i].iter().fold(0, |n, d| n * 10 + i32::from(d - b'0'));
        if exponent_negative {
            exponent = -exponent;
        }
    }
    if fraction.is_empty() && !has_exponent {
        // Up to 18 digits always fits an i64; serde_json reads `-0` as the float -0.0.
        if whole.len() > 18 || (negative && whole == b"0") {
            return None;
        }
        let n = whole.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        return Some((Loose::Integer(if negative { -n } else { n }), i));
    }
    let mut significand: u64 = 0;
    let mut significant_digits = 0;
    for &d in whole.iter().chain(fraction) {
        if significand == 0 && d == b'0' {
            continue;
        }
        significant_digits += 1;
        if significant_digits > 15 {
            return None;
        }
        significand = significand * 10 + u64::from(d - b'0');
    }
    let power = exponent - fraction.len() as i32;
    let scale = *EXACT_POWERS_OF_TEN.get(power.unsigned_abs() as usize)?;
    let magnitude = if power >= 0 { significand as f64 * scale } else { significand as f64 / scale };
    Some((Loose::Number(if negative { -magnitude } else { magnitude }), i))
}

/// The index of the first byte from `i` that is not an ASCII digit.
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64;

    use super::string;
    use crate::parse::RawEvent;

    /// What the fast reader makes of a line, or `None` where it gives up.
    fn fast(line: &str) -> Option<String> {
        RawEvent::read_flat(line).map(|raw| format!("{raw:?}"))
    }

    /// What serde_json makes of it (`Debug` tells -0.0 from 0.0, `==` does not).
    fn full(line: &str) -> Option<String> {
        serde_json::from_str::<RawEvent>(line).ok().map(|raw| format!("{raw:?}"))
    }

    #[test]
    fn plain_lines_are_read_as_serde_reads_them() {
        for line in [
            r#"{"event_id":"e1","customer_id":"c1","position_seconds":12.5,"buffering_events":2,"quality":null,"x":true}"#,
            r#" { "event_id" : "ü" , "error_count" : -7 , "bandwidth_mbps" : 1e2 , "isp" : false } "#,
            "{}",
            r#"{"position_seconds":0.000123,"watch_duration_seconds":-0.0,"completion_percentage":99.99E-1}"#,
            r#"{"session_id":123456789012345678,"device_id":-123456789012345678}"#,
        ] {
            assert!(fast(line).is_some(), "{line} was given up");
            assert_eq!(fast(line), full(line), "{line}");
        }
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        for line in [
            r#"{"event_id":"a\"b"}"#,
            "{\"event_id\":\"a\tb\"}",
            r#"{"event_id":"e1","event_id":"e2"}"#,
            r#"{"x":{"y":1}}"#,
            r#"{"x":[1]}"#,
            r#"{"x":-0}"#,
            r#"{"x":01}"#,
            r#"{"x":1.}"#,
            r#"{"x":1e}"#,
            r#"{"x":1234567890123456789}"#,
            r#"{"x":1.234567890123456}"#,
            r#"{"x":1e23}"#,
            r#"{"x":1,}"#,
            r#"{"x":1} x"#,
            r#"{"x":tru}"#,
            r#"{"x":truex}"#,
            "[1]",
            "{\"x\":1}\u{c}",
            r#"{"x":1"#,
        ] {
            assert_eq!(fast(line), None, "{line} was read");
        }
    }

    #[test]
    fn strings_end_at_the_first_quote_wherever_it_falls() {
        for len in 0..20 {
            for tail in ["\"", "\\\"", "\u{1}\"", "\u{1f}\""] {
                let text = "é".repeat(len / 2) + &"a".repeat(len % 2);
                let line = format!("\"{text}{tail}, more\"");
                let read = string(&line, 1);
                if tail == "\"" {
                    assert_eq!(read, Some((text.as_str(), text.len() + 2)), "{line:?}");
                } else {
                    assert_eq!(read, None, "{line:?}");
                }
            }
        }
        // DEL and the bytes of multi-byte characters are text like any other.
        let text = "\u{7f}\u{80}\u{10ffff}0123456789";
        assert_eq!(string(&format!("\"{text}\" "), 1), Some((text, text.len() + 2)));
    }

    /// A random JSON-ish value: mostly valid, sometimes at the edges of
    /// what the fast reader takes, sometimes broken.
    fn value(rng: &mut Pcg64) -> String {
        let digits =
            |rng: &mut Pcg64, max: usize| (0..rng.random_range(0..=max)).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect::<String>();
        match rng.random_range(0..12) {
            0 => "null".into(),
            1 => ["true", "false", "tru", "nulll", "False"][rng.random_range(0..5)].into(),
            2 => format!("\"{}\"", ["e1", "", " ", "ü€", "a\\\"b", "a\\u00e9", "tab\tin", "\\ud83d\\ude00", "x\\"][rng.random_range(0..9)]),
            3 => ["{}", "[]", "{\"a\":1}", "[1,\"x\"]", "{", "]"][rng.random_range(0..6)].into(),
            _ => {
                let mut n = String::new();
                if rng.random_bool(0.3) {
                    n.push('-');
                }
                n += &digits(rng, 22);
                if rng.random_bool(0.5) {
                    n.push('.');
                    n += &digits(rng, 20);
                }
                if rng.random_bool(0.3) {
                    n.push(['e', 'E'][rng.random_range(0..2)]);
                    n += ["", "+", "-"][rng.random_range(0..3)];
                    n += &digits(rng, 4);
                }
                n
            }
        }
    }

    fn space(rng: &mut Pcg64) -> &'static str {
        if rng.random_bool(0.8) { "" } else { [" ", "\t", "\r\n", "  ", "\u{c}"][rng.random_range(0..5)] }
    }

    /// A random line of known and unknown keys, now and then with a
    /// duplicate key, a missing or extra comma, or cut short.
    fn line(rng: &mut Pcg64) -> String {
        const KEYS: [&str; 8] = ["event_id", "position_seconds", "session_id", "error_count", "quality", "extra", "caf\u{e9}", "a\\u0062"];
        let mut line = format!("{}{{", space(rng));
        for n in 0..rng.random_range(0..6) {
            if n > 0 {
                line += if rng.random_bool(0.98) { "," } else { "" };
            }
            line += &format!("{}\"{}\"{}:{}{}{}", space(rng), KEYS[rng.random_range(0..KEYS.len())], space(rng), space(rng), value(rng), space(rng));
        }
        line += if rng.random_bool(0.98) { "}" } else { ",}" };
        line += space(rng);
        if rng.random_bool(0.05) {
            let mut cut = rng.random_range(0..=line.len());
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        line
    }

    /// Randomized equivalence with serde_json (DataFusion's fuzz tests are the
    /// model): wherever the fast reader reads a line, serde_json reads the same
    /// values. `STREAMREEL_FUZZ_SEED` reruns a printed seed.
    #[test]
    fn the_fast_reader_agrees_with_serde_on_random_lines() {
        let seed = streamreel_testkit::fuzz_seed();
        println!("flat JSON fuzz seed {seed}; rerun it: STREAMREEL_FUZZ_SEED={seed} cargo test --release -p bronze-ingest flat -- --nocapture");
        let mut rng = Pcg64::seed_from_u64(seed);
        let (mut read, mut given_up) = (0, 0);
        for _ in 0..200_000 {
            let line = line(&mut rng);
            match fast(&line) {
                Some(values) => {
                    read += 1;
                    assert_eq!(Some(values), full(&line), "seed {seed}: {line:?}");
                }
                None => given_up += 1,
            }
        }
        println!("read {read} lines fast, left {given_up} to serde_json");
        // Both paths taken often: the comparison above means something.
        assert!(read > 20_000 && given_up > 20_000, "read {read}, given up {given_up}");
    }
}
