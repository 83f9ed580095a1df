//! The fast path for the objects tokens are actually made of: flat JSON objects of
//! strings without escapes, integers, and lists of such strings. It reads nothing
//! else: at the first byte it is not sure of (an escape, a float, a nested object,
//! `true`, a repeated key, a syntax error, text that is not UTF-8) it gives up and
//! the caller parses the bytes again with serde_json, which decides what to refuse.
//! So this path only ever *accepts*, and only input that the full parser would read
//! to the same members (`claims/tests.rs` checks the two against each other).

use super::Members;

/// A member's value, as the fast path reads it.
pub(crate) enum Flat<'a> {
    /// A string with no escapes (so no `"` or `\`) and no control characters.
    Str(&'a str),
    Int(i64),
    /// A list of strings: the text between the brackets.
    Strings(&'a str),
}

/// The strings of a [`Flat::Strings`] list.
pub(crate) fn strings(inner: &str) -> impl Iterator<Item = &str> {
    // Strings here hold no quote, so each runs from one quote to the next.
    let mut rest = inner;
    std::iter::from_fn(move || {
        let quote = |s: &str| s.as_bytes().iter().position(|&b| b == b'"');
        let open = quote(rest)? + 1;
        let close = open + quote(rest.get(open..)?)?;
        let string = rest.get(open..close)?;
        rest = rest.get(close + 1..)?;
        Some(string)
    })
}

/// Known keys seen so far (a bit each), and the unknown ones.
struct Seen<'a> {
    known: u16,
    unknown: [&'a str; 8],
    unknowns: usize,
}

impl<'a> Seen<'a> {
    /// Whether the key was new; `None` when there are too many unknown keys to
    /// track here.
    #[inline]
    fn insert<'de, M: Members<'de>>(&mut self, key: &'a str) -> Option<(bool, Option<u16>)> {
        if let Some(member) = M::known(key) {
            let bit = 1 << member;
            let fresh = self.known & bit == 0;
            self.known |= bit;
            return Some((fresh, Some(member)));
        }
        let seen = self.unknown.get(..self.unknowns)?;
        if seen.contains(&key) {
            return Some((false, None));
        }
        *self.unknown.get_mut(self.unknowns)? = key;
        self.unknowns += 1;
        Some((true, None))
    }
}

/// Reads `bytes` as a flat object into `M`, or `None` where the full parser must
/// decide.
pub(crate) fn object<'de, M: Members<'de>>(bytes: &'de [u8]) -> Option<M> {
    // Checked once here, so that strings (whose ends are ASCII quotes) need no
    // check of their own; serde_json accepts the same strings, checking each.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut members = M::default();
    let mut seen = Seen {
        known: 0,
        unknown: [""; 8],
        unknowns: 0,
    };
    let mut at = space(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = space(bytes, at + 1);
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            let (key, after_key) = string(text, at)?;
            at = space(bytes, after_key);
            if bytes.get(at) != Some(&b':') {
                return None;
            }
            at = space(bytes, at + 1);
            let (value, after_value) = value(text, at)?;
            let (fresh, member) = seen.insert::<M>(key)?;
            if !fresh {
                return None;
            }
            if let Some(member) = member {
                members.flat(member, value);
            }
            at = space(bytes, after_value);
            match bytes.get(at) {
                Some(b',') => at = space(bytes, at + 1),
                Some(b'}') => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (space(bytes, at) == bytes.len()).then_some(members)
}

/// Past any JSON whitespace from `at`.
#[inline]
fn space(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The string that starts at `at` (with its quote) if it has no escapes and no
/// control characters (any other character is valid: the whole text is known to
/// be UTF-8), and where it ends (past its closing quote).
#[inline]
fn string(text: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let end = start + string_end(bytes.get(start..)?)?;
    if bytes.get(end) != Some(&b'"') {
        return None;
    }
    Some((text.get(start..end)?, end + 1))
}

/// The value that starts at `at`, and where it ends.
#[inline]
fn value(text: &str, at: usize) -> Option<(Flat<'_>, usize)> {
    let bytes = text.as_bytes();
    match *bytes.get(at)? {
        b'"' => string(text, at).map(|(s, end)| (Flat::Str(s), end)),
        b'-' | b'0'..=b'9' => integer(bytes, at).map(|(i, end)| (Flat::Int(i), end)),
        b'[' => {
            let start = at + 1;
            let mut at = space(bytes, start);
            if bytes.get(at) == Some(&b']') {
                return Some((Flat::Strings(""), at + 1));
            }
            loop {
                let (_, after) = string(text, at)?;
                at = space(bytes, after);
                match bytes.get(at) {
                    Some(b',') => at = space(bytes, at + 1),
                    Some(b']') => return Some((Flat::Strings(text.get(start..at)?), at + 1)),
                    _ => return None,
                }
            }
        }
        _ => None,
    }
}

/// An integer of at most 18 digits (so it fits an `i64`), not followed by a
/// fraction or an exponent; JSON's grammar (no leading zeros, no `+`).
#[inline]
fn integer(bytes: &[u8], at: usize) -> Option<(i64, usize)> {
    let negative = bytes.get(at) == Some(&b'-');
    let start = at + usize::from(negative);
    let mut end = start;
    let mut value: i64 = 0;
    while let Some(&digit @ b'0'..=b'9') = bytes.get(end) {
        if end - start == 18 {
            return None;
        }
        value = value * 10 + i64::from(digit - b'0');
        end += 1;
    }
    let digits = end - start;
    let leading_zero = digits > 1 && bytes.get(start) == Some(&b'0');
    if digits == 0 || leading_zero || matches!(bytes.get(end), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    Some((if negative { -value } else { value }, end))
}

/// The index of the first `"`, `\` or control character in `bytes`: eight bytes at
/// a time, since strings (ids, URLs, keys) are most of what a token holds.
#[inline]
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    const SPACES: u64 = ONES * b' ' as u64;
    let mut start = 0;
    while let Some(chunk) = bytes.get(start..start + 8) {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).ok()?);
        // A high bit for each byte that is a quote, a backslash or below 0x20. Only
        // bits above a true one can be false (a borrow carries upward), so the
        // lowest bit set marks the first such byte.
        let quote = word ^ QUOTES;
        let backslash = word ^ BACKSLASHES;
        let found = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | word.wrapping_sub(SPACES) & !word)
            & HIGH;
        if found != 0 {
            return Some(start + (found.trailing_zeros() / 8) as usize);
        }
        start += 8;
    }
    bytes
        .get(start..)?
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|at| start + at)
}
