//! Splitting and decoding against the code it replaced (kept here as the
//! reference), and the headers of tessera's own tokens, which are not parsed again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use proptest::prelude::*;
use tessera_keys::{HmacKey, SigningKey};

use super::*;
use crate::keys::VerifyingKeys;

const SECRET: &[u8] = b"a shared secret of at least 32 bytes";

type Outcome = Result<
    (
        String,
        Option<String>,
        Option<String>,
        Vec<u8>,
        Vec<u8>,
        Vec<u8>,
    ),
    VerifyError,
>;

/// The split that counted the parts first, then decoded all three, then read the
/// header.
fn reference(token: &str, max_bytes: usize) -> Outcome {
    if token.len() > max_bytes {
        return Err(VerifyError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(THREE_PARTS);
    };
    if signature.is_empty() {
        return Err(VerifyError::Malformed("the signature is missing"));
    }
    let decode = |part: &str, what: &'static str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| VerifyError::Malformed(what))
    };
    let header_bytes = decode(header, "the header is not base64url")?;
    let payload_bytes = decode(payload, "the payload is not base64url")?;
    let signature_bytes = decode(signature, "the signature is not base64url")?;
    let h = read_header(&header_bytes)?;
    Ok((
        h.alg.into_owned(),
        h.typ.map(Cow::into_owned),
        h.kid.map(Cow::into_owned),
        token.as_bytes()[..token.rfind('.').unwrap()].to_vec(),
        payload_bytes,
        signature_bytes,
    ))
}

fn ours(token: &str, max_bytes: usize, keys: &VerifyingKeys) -> Outcome {
    let mut scratch = Vec::new();
    let parsed = parse(token, max_bytes, &mut scratch, |s| keys.known_header(s))?;
    Ok((
        parsed.header.alg.into_owned(),
        parsed.header.typ.map(Cow::into_owned),
        parsed.header.kid.map(Cow::into_owned),
        parsed.signing_input.to_vec(),
        parsed.payload.to_vec(),
        parsed.signature.to_vec(),
    ))
}

fn keys() -> (SigningKey, VerifyingKeys) {
    let key = SigningKey::from_pkcs8(
        tessera_keys::Algorithm::EdDSA,
        &tessera_keys::generate(tessera_keys::Algorithm::EdDSA).unwrap(),
    )
    .unwrap();
    let set = JwkSet {
        keys: vec![key.public_jwk().clone()],
    };
    let keys = VerifyingKeys::from_jwks(&set, false).with_hs256_secret(SECRET);
    (key, keys)
}

#[track_caller]
fn same(token: &str, keys: &VerifyingKeys) {
    assert_eq!(ours(token, 8192, keys), reference(token, 8192), "{token:?}");
}

#[test]
fn the_headers_tessera_writes_are_known_and_others_are_parsed() {
    let (key, keys) = keys();
    let ed = key.sign_access_token(br#"{"sub":"a"}"#).unwrap();
    let hs = HmacKey::new(SECRET).sign_access_token(br#"{"sub":"a"}"#);
    for token in [&ed, &hs] {
        let (header, _) = token.split_once('.').unwrap();
        assert!(keys.known_header(header).is_some(), "{token}");
        same(token, &keys);
    }
    let (header, key_found) = keys.known_header(ed.split_once('.').unwrap().0).unwrap();
    assert_eq!(header.kid.as_deref(), Some(key.kid()));
    assert_eq!(key_found.algorithm, crate::Algorithm::EdDSA);
    // the same members in another order, or one more, or spelt with an escape:
    // parsed as usual, to the same answer as before
    for other in [
        format!(r#"{{"typ":"at+jwt","alg":"EdDSA","kid":"{}"}}"#, key.kid()),
        format!(
            r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt","x":1}}"#,
            key.kid()
        ),
        format!(
            r#"{{"\u0061lg":"EdDSA","kid":"{}","typ":"at+jwt"}}"#,
            key.kid()
        ),
        format!(
            r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt","jwk":{{}}}}"#,
            key.kid()
        ),
    ] {
        let token = key.sign_jws(other.as_bytes(), b"{}").unwrap();
        assert!(
            keys.known_header(token.split_once('.').unwrap().0)
                .is_none()
        );
        same(&token, &keys);
    }
    // a known header on a token with a bad payload or signature: the same refusal
    let (header, rest) = ed.split_once('.').unwrap();
    for token in [
        format!("{header}.!!.AAAA"),
        format!("{header}.e30.!!"),
        format!("{header}.e30."),
        format!("{header}.e30.AAAA.x"),
        format!("{header}.e.30.AAAA"),
        format!("{header}.{rest}"),
        format!("{header}."),
        header.to_owned(),
    ] {
        same(&token, &keys);
    }
}

#[test]
fn parts_are_refused_in_the_reference_order() {
    let (_, keys) = keys();
    for token in [
        "",
        ".",
        "..",
        "...",
        "a",
        "a.",
        "a.b",
        "a.b.",
        "a.b.c.",
        "a.b.c.d",
        "!!.e30.AAAA",
        "e30.!!.AAAA",
        "e30.e30.!!",
        "!!.e30.",
        "!!.a.b.c",
        "e30.a.b.AAAA",
        "e30.e30.AAAA",
        "e30=.e30.AAAA",
        "e30.e30.AAA",
        "W10.e30.AAAA",
    ] {
        same(token, &keys);
    }
    let big = format!("{}.e30.AAAA", "e".repeat(9000));
    same(&big, &keys);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dotted_text_gets_the_reference_answer(token in "[A-Za-z0-9_=.!-]{0,40}") {
        let (_, keys) = keys_shared();
        same(&token, keys);
    }

    #[test]
    fn damaged_tokens_get_the_reference_answer(
        hs in any::<bool>(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'.'), Just(b'='), Just(b'A'), Just(b'!'), any::<u8>().prop_filter("ascii", u8::is_ascii)],
        cut in any::<prop::sample::Index>(),
    ) {
        let (key, keys) = keys_shared();
        let mut token = if hs {
            HmacKey::new(SECRET).sign_access_token(br#"{"sub":"a"}"#)
        } else {
            key.sign_access_token(br#"{"sub":"a"}"#).unwrap()
        }
        .into_bytes();
        let i = at.index(token.len());
        token[i] = byte;
        token.truncate(token.len() - cut.index(token.len() / 8 + 1));
        same(std::str::from_utf8(&token).unwrap(), keys);
    }
}

/// One key set for all property cases.
fn keys_shared() -> &'static (SigningKey, VerifyingKeys) {
    static SHARED: std::sync::OnceLock<(SigningKey, VerifyingKeys)> = std::sync::OnceLock::new();
    SHARED.get_or_init(keys)
}
