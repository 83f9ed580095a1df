//! Every check of RFC 9449 §4.3, each with the proof an attacker would send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde_json::{Value, json};

use super::*;

const URL: &str = "https://id.example.com/oauth2/token";
const NOW: i64 = 1_800_000_000;

enum Key {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// The (n, e) of a DER RSAPublicKey (RFC 8017 A.1.1), as a test reads it.
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn length(der: &[u8], at: &mut usize) -> usize {
        let first = der[*at];
        *at += 1;
        if first < 0x80 {
            return usize::from(first);
        }
        let mut length = 0;
        for _ in 0..(first & 0x7f) {
            length = length * 256 + usize::from(der[*at]);
            *at += 1;
        }
        length
    }
    let mut at = 1;
    length(der, &mut at);
    let mut integer = || {
        assert_eq!(der[at], 0x02);
        at += 1;
        let len = length(der, &mut at);
        let value = der[at..at + len].to_vec();
        at += len;
        value
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect::<Vec<u8>>()
    };
    let n = integer();
    (n, integer())
}

impl Key {
    fn es256() -> Self {
        Self::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    fn eddsa() -> Self {
        Self::EdDsa(Ed25519KeyPair::generate().unwrap())
    }

    fn rs256() -> Self {
        Self::Rs256(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap())
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
            Self::Rs256(_) => "RS256",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            Self::Es256(pair) => {
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                })
            }
            Self::EdDsa(pair) => json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }),
            Self::Rs256(pair) => {
                let (n, e) = rsa_components(pair.public_key().as_ref());
                json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)})
            }
        }
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Self::Es256(pair) => pair
                .sign(&SystemRandom::new(), input)
                .unwrap()
                .as_ref()
                .to_vec(),
            Self::EdDsa(pair) => pair.sign(input).as_ref().to_vec(),
            Self::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input,
                    &mut signature,
                )
                .unwrap();
                signature
            }
        }
    }
}

fn claims() -> Value {
    json!({"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": URL, "iat": NOW})
}

fn header(key: &Key) -> Value {
    json!({"typ": "dpop+jwt", "alg": key.alg(), "jwk": key.jwk()})
}

fn raw_proof(key: &Key, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn proof(key: &Key, header: &Value, claims: &Value) -> String {
    raw_proof(key, &header.to_string(), &claims.to_string())
}

fn request() -> ProofRequest<'static> {
    ProofRequest {
        method: "POST",
        url: URL,
        now: NOW,
        max_age: 60,
        leeway: 5,
        access_token: None,
        nonce: None,
    }
}

#[test]
fn a_proof_of_each_algorithm_passes_and_names_its_key() {
    for key in [Key::es256(), Key::eddsa(), Key::rs256()] {
        let verified = verify_proof(&proof(&key, &header(&key), &claims()), &request()).unwrap();
        let jwk: Jwk = serde_json::from_value(key.jwk()).unwrap();
        assert_eq!(verified.jkt, thumbprint(&jwk).unwrap());
        assert_eq!(verified.jti, "e1j3V_bKic8-LAEB");
        assert_eq!(verified.iat, NOW);
    }
}

#[test]
fn the_thumbprint_is_rfc_7638s() {
    // RFC 7638 §3.1's example key and thumbprint.
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }))
    .unwrap();
    assert_eq!(
        thumbprint(&jwk).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn a_proof_not_shaped_as_one_is_refused() {
    let key = Key::es256();
    let good = proof(&key, &header(&key), &claims());
    for (bad, why) in [
        ("", "empty"),
        ("a.b", "two parts"),
        (&format!("{good}.x") as &str, "four parts"),
        (&good.replace('.', "=."), "padding"),
        (&"a".repeat(MAX_PROOF_BYTES + 1), "too large"),
    ] {
        assert!(
            matches!(verify_proof(bad, &request()), Err(DpopError::Malformed(_))),
            "{why}"
        );
    }
    // A member given twice (which one would a parser keep?).
    let twice = raw_proof(
        &key,
        &format!(
            r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{},"typ":"JWT"}}"#,
            key.jwk()
        ),
        &claims().to_string(),
    );
    assert_eq!(
        verify_proof(&twice, &request()),
        Err(DpopError::DuplicateKey)
    );
    // A member of the key given twice: the thief's `x` first, the client's last
    // (or the other way round); whichever a parser keeps, no key is read.
    let jwk = key.jwk();
    let other = Key::es256().jwk();
    for (first, last) in [(&other, &jwk), (&jwk, &other)] {
        let header = format!(
            r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{{"kty":"EC","crv":"P-256","x":{},"x":{},"y":{}}}}}"#,
            first["x"], last["x"], jwk["y"]
        );
        let proof = raw_proof(&key, &header, &claims().to_string());
        assert_eq!(verify_proof(&proof, &request()), Err(DpopError::BadKey));
    }
}

#[test]
fn a_proof_of_another_type_or_algorithm_is_refused() {
    let key = Key::es256();
    let mut other = header(&key);
    other["typ"] = json!("JWT");
    assert_eq!(
        verify_proof(&proof(&key, &other, &claims()), &request()),
        Err(DpopError::WrongType)
    );
    for alg in ["none", "HS256", "ES384", "es256"] {
        let mut other = header(&key);
        other["alg"] = json!(alg);
        assert_eq!(
            verify_proof(&proof(&key, &other, &claims()), &request()),
            Err(DpopError::AlgorithmNotAllowed),
            "{alg}"
        );
    }
    // An RSA key signing as ES256, and an EC key claimed as RS256.
    let rsa = Key::rs256();
    let mut claimed = header(&rsa);
    claimed["alg"] = json!("ES256");
    assert_eq!(
        verify_proof(&proof(&rsa, &claimed, &claims()), &request()),
        Err(DpopError::BadKey)
    );
    let mut claimed = header(&key);
    claimed["alg"] = json!("RS256");
    assert_eq!(
        verify_proof(&proof(&key, &claimed, &claims()), &request()),
        Err(DpopError::BadKey)
    );
    // An alg that does not match the key: an Ed25519 key claimed as ES256.
    let ed = Key::eddsa();
    let mut mismatched = header(&ed);
    mismatched["alg"] = json!("ES256");
    assert_eq!(
        verify_proof(&proof(&ed, &mismatched, &claims()), &request()),
        Err(DpopError::BadKey)
    );
}

#[test]
fn a_proof_without_a_public_key_or_with_a_private_one_is_refused() {
    let key = Key::es256();
    let mut none = header(&key);
    none.as_object_mut().unwrap().remove("jwk");
    assert_eq!(
        verify_proof(&proof(&key, &none, &claims()), &request()),
        Err(DpopError::BadKey)
    );
    let mut private = header(&key);
    private["jwk"]["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    assert_eq!(
        verify_proof(&proof(&key, &private, &claims()), &request()),
        Err(DpopError::BadKey),
        "a private member"
    );
    let mut symmetric = header(&key);
    symmetric["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"});
    assert_eq!(
        verify_proof(&proof(&key, &symmetric, &claims()), &request()),
        Err(DpopError::BadKey)
    );
}

#[test]
fn a_proof_signed_by_another_key_or_altered_is_refused() {
    let (key, thief) = (Key::es256(), Key::es256());
    // The header names one key, another signed.
    assert_eq!(
        verify_proof(&proof(&thief, &header(&key), &claims()), &request()),
        Err(DpopError::BadSignature)
    );
    // A claim changed after signing.
    let good = proof(&key, &header(&key), &claims());
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut altered = claims();
    altered["htu"] = json!("https://id.example.com/oauth2/introspect");
    let altered = URL_SAFE_NO_PAD.encode(altered.to_string());
    parts[1] = &altered;
    assert_eq!(
        verify_proof(&parts.join("."), &request()),
        Err(DpopError::BadSignature)
    );
}

#[test]
fn a_proof_for_another_request_is_refused() {
    let key = Key::es256();
    let sent = |claims: Value| verify_proof(&proof(&key, &header(&key), &claims), &request());
    let mut get = claims();
    get["htm"] = json!("GET");
    assert_eq!(sent(get), Err(DpopError::WrongMethod));
    let mut lower = claims();
    lower["htm"] = json!("post");
    assert_eq!(
        sent(lower),
        Err(DpopError::WrongMethod),
        "methods are case-sensitive"
    );
    for (url, why) in [
        ("https://id.example.com/oauth2/introspect", "another path"),
        ("https://evil.example/oauth2/token", "another host"),
        ("http://id.example.com/oauth2/token", "another scheme"),
        ("https://id.example.com:8443/oauth2/token", "another port"),
        ("https://id.example.com/oauth2/token/", "a trailing slash"),
        ("https://id.example.com/oauth2%2Ftoken", "an encoded slash"),
        ("https://id.example.com/oauth2/tok%65n%", "a stray percent"),
        ("not a url", "no URL"),
    ] {
        let mut other = claims();
        other["htu"] = json!(url);
        assert_eq!(sent(other), Err(DpopError::WrongUrl), "{why}");
    }
    // Normalised alike: case of scheme and host, the default port, query, fragment.
    for url in [
        "HTTPS://ID.EXAMPLE.COM/oauth2/token",
        "https://id.example.com:443/oauth2/token",
        "https://id.example.com/oauth2/token?x=1#y",
        // Percent-encodings (RFC 3986 §6.2.2): of unreserved characters, in
        // either case, and dot segments, encoded or not.
        "https://id.example.com/oauth2/tok%65n",
        "https://id.example.com/%6Fauth2/token",
        "https://id.example.com/oauth2/x/%2e%2E/token",
        "https://id.example.com/oauth2/./token",
    ] {
        let mut same = claims();
        same["htu"] = json!(url);
        assert!(sent(same).is_ok(), "{url}");
    }
    for missing in ["jti", "htm", "htu", "iat"] {
        let mut partial = claims();
        partial.as_object_mut().unwrap().remove(missing);
        assert_eq!(
            sent(partial),
            Err(DpopError::MissingClaim(missing)),
            "{missing}"
        );
    }
}

#[test]
fn a_proof_made_earlier_or_later_is_refused() {
    let key = Key::es256();
    let at = |iat: i64| {
        let mut claims = claims();
        claims["iat"] = json!(iat);
        verify_proof(&proof(&key, &header(&key), &claims), &request())
    };
    assert!(at(NOW - 60).is_ok());
    assert!(at(NOW + 5).is_ok());
    assert_eq!(
        at(NOW - 61),
        Err(DpopError::NotFresh),
        "kept and replayed later"
    );
    assert_eq!(at(NOW + 6), Err(DpopError::NotFresh), "made in advance");
}

#[test]
fn a_proof_for_another_token_or_without_the_nonce_is_refused() {
    let key = Key::es256();
    let token = "eyJhbGciOiJFUzI1NiJ9.e30.sig";
    let with_token = ProofRequest {
        access_token: Some(token),
        ..request()
    };
    let mut bound = claims();
    bound["ath"] = json!(URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes())));
    assert!(verify_proof(&proof(&key, &header(&key), &bound), &with_token).is_ok());
    assert_eq!(
        verify_proof(&proof(&key, &header(&key), &claims()), &with_token),
        Err(DpopError::MissingClaim("ath"))
    );
    let mut other = claims();
    other["ath"] = json!(URL_SAFE_NO_PAD.encode(digest(&SHA256, b"another token")));
    assert_eq!(
        verify_proof(&proof(&key, &header(&key), &other), &with_token),
        Err(DpopError::WrongTokenHash)
    );

    let with_nonce = ProofRequest {
        nonce: Some("n-0S6_WzA2Mj"),
        ..request()
    };
    assert_eq!(
        verify_proof(&proof(&key, &header(&key), &claims()), &with_nonce),
        Err(DpopError::UseNonce)
    );
    let mut stale = claims();
    stale["nonce"] = json!("an-older-nonce");
    assert_eq!(
        verify_proof(&proof(&key, &header(&key), &stale), &with_nonce),
        Err(DpopError::UseNonce)
    );
    let mut fresh = claims();
    fresh["nonce"] = json!("n-0S6_WzA2Mj");
    assert!(verify_proof(&proof(&key, &header(&key), &fresh), &with_nonce).is_ok());
}

#[test]
fn a_proof_is_used_once_and_the_cache_stays_bounded() {
    let key = Key::es256();
    let verified = verify_proof(&proof(&key, &header(&key), &claims()), &request()).unwrap();
    let cache = ReplayCache::new(3);
    cache.first_use(&verified, NOW + 65, NOW).unwrap();
    assert_eq!(
        cache.first_use(&verified, NOW + 65, NOW + 1),
        Err(DpopError::Replayed)
    );
    // The same jti under another key is another proof.
    let other = Key::es256();
    let theirs = verify_proof(&proof(&other, &header(&other), &claims()), &request()).unwrap();
    cache.first_use(&theirs, NOW + 65, NOW).unwrap();
    // Full: the oldest entries go, never more than the capacity (proofs made a
    // second apart, as a client's are).
    for n in 0..10 {
        let mut claims = claims();
        claims["jti"] = json!(format!("jti-{n}"));
        let fresh = verify_proof(&proof(&key, &header(&key), &claims), &request()).unwrap();
        cache.first_use(&fresh, NOW + 66 + n, NOW + n).unwrap();
        assert!(cache.len() <= 3);
    }
    // Past its window an entry is forgotten; the proof is refused by iat by then.
    let later = ReplayCache::new(3);
    later.first_use(&verified, NOW + 65, NOW).unwrap();
    later.first_use(&theirs, NOW + 200, NOW + 100).unwrap();
    assert_eq!(later.len(), 1);
}

#[test]
fn a_full_cache_never_lets_a_forgotten_proof_back_in() {
    // An attacker who floods a verifier with proofs of their own, so that a proof
    // they captured is pushed out of the replay set, then replays it.
    let key = Key::es256();
    let made = |jti: &str| {
        let mut claims = claims();
        claims["jti"] = json!(jti);
        verify_proof(&proof(&key, &header(&key), &claims), &request()).unwrap()
    };
    let (captured, flood, fresh) = (made("captured"), made("flood"), made("fresh"));
    let cache = ReplayCache::new(2);
    cache.first_use(&captured, NOW + 65, NOW).unwrap();
    cache.first_use(&flood, NOW + 65, NOW).unwrap();
    cache.first_use(&fresh, NOW + 66, NOW + 1).unwrap();
    assert_eq!(cache.len(), 2, "the captured proof was forgotten");
    assert_eq!(
        cache.first_use(&captured, NOW + 65, NOW + 2),
        Err(DpopError::NotFresh),
        "a forgotten proof is refused all the same"
    );
    // As is any proof no newer than it, never seen (it could be the forgotten one);
    // newer ones are taken.
    assert_eq!(
        cache.first_use(&made("as old"), NOW + 65, NOW + 2),
        Err(DpopError::NotFresh)
    );
    cache.first_use(&made("newer"), NOW + 67, NOW + 2).unwrap();
    assert_eq!(
        cache.first_use(&fresh, NOW + 66, NOW + 2),
        Err(DpopError::Replayed)
    );
}

#[test]
fn a_jti_used_again_after_its_window_is_remembered_the_second_time_too() {
    // A client that reuses a `jti` once its first proof's window has passed: the
    // first entry, still queued behind a longer-lived one, must not take the
    // second with it when it reaches the front, or the second could be replayed.
    let key = Key::es256();
    let made = |jti: &str| {
        let mut claims = claims();
        claims["jti"] = json!(jti);
        verify_proof(&proof(&key, &header(&key), &claims), &request()).unwrap()
    };
    let (long_lived, reused) = (made("long-lived"), made("reused"));
    let cache = ReplayCache::new(100);
    cache.first_use(&long_lived, NOW + 70, NOW).unwrap();
    cache.first_use(&reused, NOW + 10, NOW).unwrap();
    // Past the first window; the long-lived entry keeps the old one queued.
    cache.first_use(&reused, NOW + 75, NOW + 11).unwrap();
    // The long-lived entry and the old one behind it run out.
    cache
        .first_use(&made("later"), NOW + 140, NOW + 71)
        .unwrap();
    assert_eq!(
        cache.first_use(&reused, NOW + 75, NOW + 72),
        Err(DpopError::Replayed),
        "the second use is still remembered"
    );
}

#[test]
fn keys_kept_by_header_change_no_answer() {
    let keys = ProofKeys::new(2);
    let (key, thief) = (Key::es256(), Key::es256());
    let good = proof(&key, &header(&key), &claims());
    let first = keys.verify(&good, &request()).unwrap();
    assert_eq!(
        keys.verify(&good, &request()),
        Ok(first.clone()),
        "from the cache"
    );
    assert_eq!(first, verify_proof(&good, &request()).unwrap());
    // The kept key still checks every signature and claim.
    assert_eq!(
        keys.verify(&proof(&thief, &header(&key), &claims()), &request()),
        Err(DpopError::BadSignature)
    );
    let mut get = claims();
    get["htm"] = json!("GET");
    assert_eq!(
        keys.verify(&proof(&key, &header(&key), &get), &request()),
        Err(DpopError::WrongMethod)
    );
    // A refused header is refused each time, and past the capacity all still works.
    let mut private = header(&key);
    private["jwk"]["d"] = json!("AAAA");
    for _ in 0..2 {
        assert_eq!(
            keys.verify(&proof(&key, &private, &claims()), &request()),
            Err(DpopError::BadKey)
        );
    }
    for other in [Key::eddsa(), Key::es256(), Key::eddsa()] {
        assert!(
            keys.verify(&proof(&other, &header(&other), &claims()), &request())
                .is_ok()
        );
    }
    assert!(keys.verify(&good, &request()).is_ok());
}

#[test]
fn claims_given_twice_or_not_as_an_object_are_refused() {
    let key = Key::es256();
    let twice = raw_proof(
        &key,
        &header(&key).to_string(),
        &format!(r#"{{"jti":"a","htm":"POST","htu":"{URL}","iat":{NOW},"jti":"b"}}"#),
    );
    assert_eq!(
        verify_proof(&twice, &request()),
        Err(DpopError::DuplicateKey)
    );
    // A member the checks do not read, given twice, is refused all the same.
    let unread_twice = raw_proof(
        &key,
        &header(&key).to_string(),
        &format!(r#"{{"jti":"a","htm":"POST","htu":"{URL}","iat":{NOW},"x":1,"x":2}}"#),
    );
    assert_eq!(
        verify_proof(&unread_twice, &request()),
        Err(DpopError::DuplicateKey)
    );
    let array = raw_proof(
        &key,
        &header(&key).to_string(),
        &format!(r#"["a","POST","{URL}",{NOW}]"#),
    );
    assert!(matches!(
        verify_proof(&array, &request()),
        Err(DpopError::Malformed(_))
    ));
    let mut text_iat = claims();
    text_iat["iat"] = json!(NOW.to_string());
    assert!(matches!(
        verify_proof(&proof(&key, &header(&key), &text_iat), &request()),
        Err(DpopError::Malformed(_))
    ));
}

#[test]
fn percent_encodings_are_compared_in_one_form() {
    assert_eq!(
        percent_normalised("/a%2fb%7e%41%2E%zz%4"),
        "/a%2Fb~A.%zz%4",
        "unreserved decoded, the rest upper-cased, the malformed kept"
    );
    assert_eq!(
        normalised("https://ID.example.com:443/a%2fb%7E?q#f").as_deref(),
        Some("https://id.example.com/a%2Fb~")
    );
}
