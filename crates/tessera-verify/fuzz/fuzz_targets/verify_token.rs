//! Any bytes as a token: the size limit, splitting, base64url, the strict JSON of
//! the header (duplicate keys, embedded keys, `crit`), key lookup and signatures.
//! The seeds are valid tokens, so mutations start from the claims checks too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let _ = tessera_verify_fuzz::check(&token);
});
