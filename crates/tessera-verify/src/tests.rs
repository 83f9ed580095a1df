//! Every refusal, each with the token that provokes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use proptest::prelude::*;
use serde_json::{Value, json};
use tessera_keys::{HmacKey, SigningKey};

use super::*;

const ISS: &str = "https://id.example";
const AUD: &str = "orders";
const NOW: i64 = 1_800_000_000;
const HS_SECRET: &[u8] = b"a shared secret of at least 32 bytes";

struct Fixture {
    keys: Vec<SigningKey>,
    verifier: Verifier,
}

fn fixture() -> Fixture {
    let keys: Vec<SigningKey> = tessera_keys::Algorithm::ASYMMETRIC
        .iter()
        .map(|&a| SigningKey::from_pkcs8(a, &tessera_keys::generate(a).unwrap()).unwrap())
        .collect();
    let set = JwkSet {
        keys: keys.iter().map(|k| k.public_jwk().clone()).collect(),
    };
    let mut policy = Policy::new(ISS, AUD);
    policy.algorithms.push(Algorithm::HS256);
    let verifier = Verifier::new(
        policy,
        VerifyingKeys::from_jwks(&set, false).with_hs256_secret(HS_SECRET),
    );
    Fixture { keys, verifier }
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "user-1", "aud": AUD, "exp": NOW + 300, "iat": NOW,
        "jti": "jti-1", "client_id": "c", "scope": "read write", "sid": "sid-1",
        "roles": ["admin"],
    })
}

fn header(key: &SigningKey) -> Value {
    json!({"alg": key.algorithm().as_str(), "typ": "at+jwt", "kid": key.kid()})
}

fn sign(key: &SigningKey, header: &Value, payload: &Value) -> String {
    key.sign_jws(
        header.to_string().as_bytes(),
        payload.to_string().as_bytes(),
    )
    .unwrap()
}

fn b64(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(value)
}

#[test]
fn valid_tokens_of_every_algorithm_pass() {
    let f = fixture();
    for key in &f.keys {
        let token = key
            .sign_access_token(claims().to_string().as_bytes())
            .unwrap();
        let verified = f.verifier.verify_at(&token, NOW).unwrap();
        assert_eq!(verified.sub, "user-1");
        assert_eq!(verified.aud, [AUD]);
        assert_eq!(verified.kid.as_deref(), Some(key.kid()));
        assert!(verified.has_scope("write") && !verified.has_scope("admin"));
        assert_eq!(verified.roles, ["admin"]);
    }
    let hs = HmacKey::new(HS_SECRET).sign_access_token(claims().to_string().as_bytes());
    assert_eq!(f.verifier.verify_at(&hs, NOW).unwrap().kid, None);
    // aud as a list naming us among others
    let mut c = claims();
    c["aud"] = json!(["billing", AUD]);
    f.verifier
        .verify_at(&sign(&f.keys[0], &header(&f.keys[0]), &c), NOW)
        .unwrap();
}

#[test]
fn the_fully_specified_ed25519_name_verifies_as_eddsa_and_only_with_an_ed25519_key() {
    let f = fixture();
    let ed = &f.keys[0];
    assert_eq!(ed.algorithm(), tessera_keys::Algorithm::EdDSA);
    let named = json!({"alg": "Ed25519", "typ": "at+jwt", "kid": ed.kid()});
    let verified = f
        .verifier
        .verify_at(&sign(ed, &named, &claims()), NOW)
        .unwrap();
    assert_eq!(verified.kid.as_deref(), Some(ed.kid()));
    // The name does not make another key an Ed25519 one.
    let es = &f.keys[1];
    let claimed = json!({"alg": "Ed25519", "typ": "at+jwt", "kid": es.kid()});
    assert_eq!(
        f.verifier.verify_at(&sign(es, &claimed, &claims()), NOW),
        Err(VerifyError::AlgorithmMismatch)
    );
}

#[test]
fn header_attacks_are_refused() {
    let f = fixture();
    let ed = &f.keys[0];
    let payload = b64(&claims().to_string());
    // alg none, with and without a signature
    let none = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"at+jwt"}"#));
    assert_eq!(
        f.verifier.verify_at(&none, NOW),
        Err(VerifyError::Malformed("the signature is missing"))
    );
    let none_signed = format!("{}.{payload}.AAAA", b64(r#"{"alg":"none","typ":"at+jwt"}"#));
    assert_eq!(
        f.verifier.verify_at(&none_signed, NOW),
        Err(VerifyError::AlgorithmNotAllowed)
    );
    // stripped signature of a real token
    let real = ed
        .sign_access_token(claims().to_string().as_bytes())
        .unwrap();
    let stripped = &real[..=real.rfind('.').unwrap()];
    assert!(matches!(
        f.verifier.verify_at(stripped, NOW),
        Err(VerifyError::Malformed(_))
    ));
    // algorithm confusion: HS256 "signed" with the EdDSA public key, naming its kid
    let public = URL_SAFE_NO_PAD
        .decode(match &ed.public_jwk().algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) => p.x.clone(),
            _ => unreachable!(),
        })
        .unwrap();
    let confused_header =
        b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": ed.kid()}).to_string());
    let input = format!("{confused_header}.{payload}");
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public),
        input.as_bytes(),
    );
    let confused = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    assert_eq!(
        f.verifier.verify_at(&confused, NOW),
        Err(VerifyError::AlgorithmMismatch)
    );
    // unknown kid
    let mut h = header(ed);
    h["kid"] = json!("nope");
    assert_eq!(
        f.verifier.verify_at(&sign(ed, &h, &claims()), NOW),
        Err(VerifyError::UnknownKey)
    );
    // embedded keys and key URLs
    for member in ["jwk", "jku", "x5u", "x5c"] {
        let mut h = header(ed);
        h[member] = json!("https://evil.example/key");
        assert_eq!(
            f.verifier.verify_at(&sign(ed, &h, &claims()), NOW),
            Err(VerifyError::EmbeddedKey),
            "{member}"
        );
    }
    // unknown critical extension
    let mut h = header(ed);
    h["crit"] = json!(["exp-2"]);
    h["exp-2"] = json!(1);
    assert_eq!(
        f.verifier.verify_at(&sign(ed, &h, &claims()), NOW),
        Err(VerifyError::UnknownCritical)
    );
    // an algorithm the policy does not list
    let strict = Verifier::new(
        Policy {
            algorithms: vec![Algorithm::ES256],
            ..Policy::new(ISS, AUD)
        },
        VerifyingKeys::from_jwks(
            &JwkSet {
                keys: vec![ed.public_jwk().clone()],
            },
            false,
        ),
    );
    assert_eq!(
        strict.verify_at(&real, NOW),
        Err(VerifyError::AlgorithmNotAllowed)
    );
    // a key of one algorithm named by a token claiming another
    let es = &f.keys[1];
    let mut h = header(ed);
    h["alg"] = json!("ES256");
    let lying = sign(es, &h, &claims());
    assert_eq!(
        f.verifier.verify_at(&lying, NOW),
        Err(VerifyError::AlgorithmMismatch)
    );
    // wrong typ
    let mut h = header(ed);
    h["typ"] = json!("JWT");
    assert_eq!(
        f.verifier.verify_at(&sign(ed, &h, &claims()), NOW),
        Err(VerifyError::WrongType)
    );
}

#[test]
fn tampering_is_refused() {
    let f = fixture();
    let ed = &f.keys[0];
    let token = ed
        .sign_access_token(claims().to_string().as_bytes())
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut other = claims();
    other["sub"] = json!("admin");
    let payload_swapped = format!("{}.{}.{}", parts[0], b64(&other.to_string()), parts[2]);
    assert_eq!(
        f.verifier.verify_at(&payload_swapped, NOW),
        Err(VerifyError::BadSignature)
    );
    let mut h = header(ed);
    h["typ"] = json!("at+JWT");
    let header_swapped = format!("{}.{}.{}", b64(&h.to_string()), parts[1], parts[2]);
    assert_eq!(
        f.verifier.verify_at(&header_swapped, NOW),
        Err(VerifyError::BadSignature)
    );
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        f.verifier.verify_at(&flipped, NOW),
        Err(VerifyError::BadSignature)
    );
    // a token of another issuer's key with our kid
    let stranger = SigningKey::from_pkcs8(
        tessera_keys::Algorithm::EdDSA,
        &tessera_keys::generate(tessera_keys::Algorithm::EdDSA).unwrap(),
    )
    .unwrap();
    assert_eq!(
        f.verifier
            .verify_at(&sign(&stranger, &header(ed), &claims()), NOW),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn claims_are_checked() {
    let f = fixture();
    let ed = &f.keys[0];
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims();
        change(&mut c);
        f.verifier.verify_at(&sign(ed, &header(ed), &c), NOW)
    };
    assert_eq!(
        with(&|c| c["exp"] = json!(NOW - 31)),
        Err(VerifyError::Expired)
    );
    assert!(
        with(&|c| c["exp"] = json!(NOW - 29)).is_ok(),
        "within leeway"
    );
    assert_eq!(
        with(&|c| c["nbf"] = json!(NOW + 60)),
        Err(VerifyError::NotYetValid)
    );
    assert_eq!(
        with(&|c| c["iat"] = json!(NOW + 60)),
        Err(VerifyError::NotYetValid)
    );
    assert_eq!(
        with(&|c| c["iss"] = json!("https://evil.example")),
        Err(VerifyError::WrongIssuer)
    );
    assert_eq!(
        with(&|c| c["aud"] = json!("billing")),
        Err(VerifyError::WrongAudience)
    );
    assert_eq!(
        with(&|c| c["aud"] = json!([])),
        Err(VerifyError::WrongAudience)
    );
    assert_eq!(
        with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        Err(VerifyError::MissingClaim("exp"))
    );
    assert_eq!(
        with(&|c| {
            c.as_object_mut().unwrap().remove("aud");
        }),
        Err(VerifyError::MissingClaim("aud"))
    );
    // wrong JSON types: the claims a weaker parser would skip (CVE-2026-25537)
    for (claim, value) in [
        ("exp", json!("9999999999")),
        ("nbf", json!(true)),
        ("iss", json!(1)),
        ("aud", json!(1)),
        ("sid", json!({})),
    ] {
        assert!(
            matches!(
                with(&|c| c[claim] = value.clone()),
                Err(VerifyError::Malformed(_))
            ),
            "{claim}"
        );
    }
}

#[test]
fn malformed_and_oversized_tokens_are_refused() {
    let f = fixture();
    let ed = &f.keys[0];
    for bad in [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        "!!.e30.AAAA",
        "e30.!!.AAAA",
        "e30.e30.!!",
        "e30=.e30.AAAA",
    ] {
        assert!(
            matches!(
                f.verifier.verify_at(bad, NOW),
                Err(VerifyError::Malformed(_))
            ),
            "{bad:?}"
        );
    }
    let not_json = format!("{}.{}.AAAA", b64("not json"), b64("{}"));
    assert!(matches!(
        f.verifier.verify_at(&not_json, NOW),
        Err(VerifyError::Malformed(_))
    ));
    let array = format!("{}.{}.AAAA", b64("[1]"), b64("{}"));
    assert!(matches!(
        f.verifier.verify_at(&array, NOW),
        Err(VerifyError::Malformed(_))
    ));
    let trailing = ed
        .sign_jws(
            header(ed).to_string().as_bytes(),
            format!("{} x", claims()).as_bytes(),
        )
        .unwrap();
    assert!(matches!(
        f.verifier.verify_at(&trailing, NOW),
        Err(VerifyError::Malformed(_))
    ));
    // duplicate keys, in the payload and in the header
    let doubled = format!(r#"{{"sub":"a",{}"#, &claims().to_string()[1..]);
    let dup = ed
        .sign_jws(header(ed).to_string().as_bytes(), doubled.as_bytes())
        .unwrap();
    assert_eq!(
        f.verifier.verify_at(&dup, NOW),
        Err(VerifyError::DuplicateKey)
    );
    let dup_header = format!(r#"{{"alg":"none",{}"#, &header(ed).to_string()[1..]);
    let dup = ed
        .sign_jws(dup_header.as_bytes(), claims().to_string().as_bytes())
        .unwrap();
    assert_eq!(
        f.verifier.verify_at(&dup, NOW),
        Err(VerifyError::DuplicateKey)
    );
    let big = "a".repeat(8193);
    assert_eq!(f.verifier.verify_at(&big, NOW), Err(VerifyError::TooLarge));
}

#[test]
fn revoked_sessions_tokens_and_keys_are_refused_until_they_expire() {
    let f = fixture();
    let ed = &f.keys[0];
    let token = ed
        .sign_access_token(claims().to_string().as_bytes())
        .unwrap();
    f.verifier.verify_at(&token, NOW).unwrap();
    for (sequence, event, by) in [
        (
            1,
            RevocationEvent::Session("sid-1".into()),
            RevokedBy::Session,
        ),
        (2, RevocationEvent::Token("jti-1".into()), RevokedBy::Token),
        (3, RevocationEvent::Key(ed.kid().into()), RevokedBy::Key),
        (
            4,
            RevocationEvent::User {
                id: "user-1".into(),
                before: NOW,
            },
            RevokedBy::User,
        ),
        (
            5,
            RevocationEvent::Client {
                id: "c".into(),
                before: NOW,
            },
            RevokedBy::Client,
        ),
    ] {
        let check = Verifier::new(
            f.verifier.policy().clone(),
            VerifyingKeys::from_jwks(
                &JwkSet {
                    keys: vec![ed.public_jwk().clone()],
                },
                false,
            ),
        );
        check.update_revocations(|set| set.apply(sequence, event.clone(), NOW + 300));
        assert_eq!(check.verify_at(&token, NOW), Err(VerifyError::Revoked(by)));
        check.update_revocations(|set| {
            assert_eq!(set.position(), sequence);
            set.prune(NOW + 301);
            assert!(set.is_empty());
        });
    }
    // another session's revocation leaves this token alone
    f.verifier.update_revocations(|set| {
        set.apply(4, RevocationEvent::Session("sid-2".into()), NOW + 300)
    });
    f.verifier.verify_at(&token, NOW).unwrap();
    // a user cut-off refuses what was issued up to it, not what came after
    f.verifier.update_revocations(|set| {
        set.apply(
            5,
            RevocationEvent::User {
                id: "user-1".into(),
                before: NOW - 1,
            },
            NOW + 300,
        )
    });
    f.verifier.verify_at(&token, NOW).unwrap();
    let mut older = claims();
    older["iat"] = json!(NOW - 1);
    assert_eq!(
        f.verifier.verify_at(&sign(ed, &header(ed), &older), NOW),
        Err(VerifyError::Revoked(RevokedBy::User))
    );
    let mut bob = older.clone();
    bob["sub"] = json!("user-2");
    f.verifier
        .verify_at(&sign(ed, &header(ed), &bob), NOW)
        .unwrap();
    // a client cut-off likewise, by client_id, whoever the subject
    f.verifier.update_revocations(|set| {
        set.apply(
            6,
            RevocationEvent::Client {
                id: "c".into(),
                before: NOW - 1,
            },
            NOW + 300,
        )
    });
    f.verifier.verify_at(&token, NOW).unwrap();
    assert_eq!(
        f.verifier.verify_at(&sign(ed, &header(ed), &bob), NOW),
        Err(VerifyError::Revoked(RevokedBy::Client))
    );
    let mut other_client = bob.clone();
    other_client["client_id"] = json!("client-2");
    f.verifier
        .verify_at(&sign(ed, &header(ed), &other_client), NOW)
        .unwrap();
}

#[test]
fn jwks_keys_are_bound_to_their_algorithm_and_oct_keys_need_consent() {
    let f = fixture();
    let oct: JwkSet = serde_json::from_value(json!({"keys": [
        {"kty": "oct", "kid": "h", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(HS_SECRET)},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
    ]}))
    .unwrap();
    assert!(
        VerifyingKeys::from_jwks(&oct, false).is_empty(),
        "no oct from a JWKS URL, no kid-less key"
    );
    assert_eq!(VerifyingKeys::from_jwks(&oct, true).len(), 1);
    // a kid-less oct key from a file verifies kid-less HS256 tokens; from a URL, never
    let kidless: JwkSet = serde_json::from_value(json!({"keys": [
        {"kty": "oct", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(HS_SECRET)},
    ]}))
    .unwrap();
    assert!(VerifyingKeys::from_jwks(&kidless, false).is_empty());
    assert_eq!(VerifyingKeys::from_jwks(&kidless, true).len(), 1);
    let _ = f;
}

/// One fixture for all property cases: RSA key generation is slow.
static SHARED: std::sync::LazyLock<Fixture> = std::sync::LazyLock::new(fixture);

proptest! {
    #[test]
    fn verification_never_panics(input in ".{0,300}") {
        let _ = SHARED.verifier.verify_at(&input, NOW);
    }

    #[test]
    fn dotted_base64_garbage_never_panics(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,80}") {
        let _ = SHARED.verifier.verify_at(&format!("{a}.{b}.{c}"), NOW);
    }
}

#[test]
fn leeway_is_capped_at_five_minutes() {
    let f = fixture();
    let ed = &f.keys[0];
    let lax = Verifier::new(
        Policy {
            leeway: Duration::from_secs(3600),
            ..Policy::new(ISS, AUD)
        },
        VerifyingKeys::from_jwks(
            &JwkSet {
                keys: vec![ed.public_jwk().clone()],
            },
            false,
        ),
    );
    assert_eq!(lax.policy().leeway, MAX_LEEWAY);
    let mut c = claims();
    c["exp"] = json!(NOW - 200);
    assert!(lax.verify_at(&sign(ed, &header(ed), &c), NOW).is_ok());
    c["exp"] = json!(NOW - 400);
    assert_eq!(
        lax.verify_at(&sign(ed, &header(ed), &c), NOW),
        Err(VerifyError::Expired)
    );
}
