//! Any header and payload, correctly signed, so that every input reaches past the
//! signature to the header rules and the claims checks.
//!
//! Input: one byte choosing the key (0 EdDSA, 1 ES256, 2 RS256, 3 HS256, modulo 4),
//! then the header bytes, a newline, the payload bytes. `$kid` in the header becomes
//! the chosen key's `kid` (the RSA key, and so its kid, is new in every run).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let index = usize::from(selector % 4);
    let (header, payload) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let header = match tessera_verify_fuzz::fixture().keys.get(index) {
        Some(key) => replace(header, b"$kid", key.kid().as_bytes()),
        None => header.to_vec(),
    };
    let token = tessera_verify_fuzz::sign(index, &header, payload);
    let _ = tessera_verify_fuzz::check(&token);
});

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len() + to.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}
