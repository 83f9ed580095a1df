//! Writes the seed tokens of `verify_token` (valid tokens from the fixture's fixed
//! keys, plus near misses) and checks that the seeds of both targets verify.
//! Run from this directory: `cargo run --example seeds`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use tessera_verify_fuzz::{check, sign};

fn main() {
    let claims = br#"{"iss":"https://id.example","sub":"user-1","aud":"orders","exp":1800000300,"iat":1800000000,"jti":"jti-1","client_id":"app","scope":"read write","sid":"sid-1","roles":["admin"]}"#;
    let keys = &tessera_verify_fuzz::fixture().keys;
    let dir = Path::new("seeds/verify_token");
    fs::create_dir_all(dir).unwrap();
    // EdDSA and ES256 keys are fixed, HS256 too: these verify in every run.
    for (name, index) in [("EdDSA", 0), ("ES256", 1), ("HS256", 3)] {
        let header = match keys.get(index) {
            Some(key) => format!(
                r#"{{"alg":"{}","typ":"at+jwt","kid":"{}"}}"#,
                key.algorithm(),
                key.kid()
            ),
            None => r#"{"alg":"HS256","typ":"at+jwt"}"#.to_owned(),
        };
        let token = sign(index, header.as_bytes(), claims);
        check(&token).unwrap_or_else(|e| panic!("{name}: {e}"));
        fs::write(dir.join(name), &token).unwrap();
    }
    // Near misses: refused, each for another reason.
    let ed = keys[0].kid();
    let near = [
        (
            "duplicate-key",
            format!(r#"{{"alg":"EdDSA","alg":"EdDSA","typ":"at+jwt","kid":"{ed}"}}"#),
        ),
        (
            "embedded-jwk",
            format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{ed}","jwk":{{}}}}"#),
        ),
        (
            "crit",
            format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{ed}","crit":["b64"]}}"#),
        ),
        ("alg-none", r#"{"alg":"none","typ":"at+jwt"}"#.to_owned()),
    ];
    for (name, header) in near {
        let token = sign(0, header.as_bytes(), claims);
        assert!(check(&token).is_err(), "{name} passed");
        fs::write(dir.join(name), &token).unwrap();
    }
    // The seeds of signed_token, signed as that target signs them.
    for entry in fs::read_dir("seeds/signed_token").unwrap() {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        let index = usize::from(data[0] % 4);
        let (header, payload) =
            data[1..].split_at(data[1..].iter().position(|&b| b == b'\n').unwrap());
        let header = String::from_utf8_lossy(header)
            .replace("$kid", keys.get(index).map_or("", |k| k.kid()));
        let result = check(&sign(index, header.as_bytes(), &payload[1..]));
        println!("{}: {result:?}", path.display());
    }
}
