//! What the fuzz targets share: a verifier with a key of every algorithm, and the
//! check every verified token must pass.
//!
//! The Ed25519 and P-256 keys and the HS256 secret are fixed, so tokens signed by
//! them (the seeds in `seeds/verify_token`) verify in every run; the RSA key is made
//! afresh at start-up (RSA has no cheap fixed form), so only `signed_token` reaches
//! past its signature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;
use tessera_keys::{Algorithm as KeyAlgorithm, PrivateKeyDer, SigningKey};
use tessera_verify::{
    AccessClaims, Algorithm, Policy, RevocationEvent, Verifier, VerifyError, VerifyingKeys,
};

pub const ISS: &str = "https://id.example";
pub const AUD: &str = "orders";
/// Every check runs "as of" this time, so seeds do not expire.
pub const NOW: i64 = 1_800_000_000;
pub const LEEWAY: i64 = 30;
/// Small enough that the fuzzer's default input size (4 KiB) reaches `TooLarge`.
pub const MAX_TOKEN_BYTES: usize = 2048;
pub const HS_SECRET: &[u8] = b"the fuzz targets' shared secret, 32+ bytes";

/// Revoked in the fixture's revocation set.
pub const REVOKED_SID: &str = "revoked-sid";
pub const REVOKED_JTI: &str = "revoked-jti";
pub const CUT_OFF_USER: &str = "cut-off-user";

pub struct Fixture {
    /// EdDSA, ES256, RS256, in that order.
    pub keys: Vec<SigningKey>,
    pub hmac: aws_lc_rs::hmac::Key,
    pub verifier: Verifier,
}

/// PKCS#8 v1 of the Ed25519 key whose seed is `seed`.
fn ed25519_pkcs8(seed: [u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    der
}

/// PKCS#8 v1 of the P-256 key whose private scalar is `scalar` (SEC 1
/// ECPrivateKey without the optional public key).
fn p256_pkcs8(scalar: [u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x41, // PrivateKeyInfo
        0x02, 0x01, 0x00, // version 0
        0x30, 0x13, // AlgorithmIdentifier
        0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // id-ecPublicKey
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // prime256v1
        0x04, 0x27, // privateKey OCTET STRING
        0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20, // ECPrivateKey v1, 32-byte scalar
    ];
    der.extend_from_slice(&scalar);
    der
}

fn key(algorithm: KeyAlgorithm, der: Vec<u8>) -> SigningKey {
    SigningKey::from_pkcs8(algorithm, &PrivateKeyDer::from_bytes(der)).expect("a fixture key")
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = vec![
            key(KeyAlgorithm::EdDSA, ed25519_pkcs8([7; 32])),
            key(KeyAlgorithm::ES256, p256_pkcs8([7; 32])),
            key(
                KeyAlgorithm::RS256,
                tessera_keys::generate(KeyAlgorithm::RS256)
                    .expect("an RSA key")
                    .as_bytes()
                    .to_vec(),
            ),
        ];
        let set = JwkSet {
            keys: keys.iter().map(|k| k.public_jwk().clone()).collect(),
        };
        let policy = Policy {
            algorithms: vec![
                Algorithm::EdDSA,
                Algorithm::ES256,
                Algorithm::RS256,
                Algorithm::HS256,
            ],
            leeway: Duration::from_secs(LEEWAY as u64),
            max_token_bytes: MAX_TOKEN_BYTES,
            ..Policy::new(ISS, AUD)
        };
        let verifier = Verifier::new(
            policy,
            VerifyingKeys::from_jwks(&set, false).with_hs256_secret(HS_SECRET),
        );
        verifier.update_revocations(|set| {
            let until = NOW + 3600;
            set.apply(1, RevocationEvent::Session(REVOKED_SID.into()), until);
            set.apply(2, RevocationEvent::Token(REVOKED_JTI.into()), until);
            set.apply(
                3,
                RevocationEvent::User {
                    id: CUT_OFF_USER.into(),
                    before: NOW - 60,
                },
                until,
            );
        });
        Fixture {
            keys,
            hmac: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, HS_SECRET),
            verifier,
        }
    })
}

/// A compact JWS over `header` and `payload` as given (any bytes), signed by
/// fixture key `index` (0 EdDSA, 1 ES256, 2 RS256, 3 HS256).
pub fn sign(index: usize, header: &[u8], payload: &[u8]) -> String {
    let f = fixture();
    match f.keys.get(index) {
        Some(key) => key.sign_jws(header, payload).expect("signing"),
        None => {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(payload)
            );
            let tag = aws_lc_rs::hmac::sign(&f.hmac, input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
        }
    }
}

/// Verifies `token` and, when it is accepted, checks that what was accepted is what
/// the policy allows and what any other JSON parser reads in the token. Panics (a
/// crash for the fuzzer) on any disagreement.
pub fn check(token: &str) -> Result<AccessClaims, VerifyError> {
    let f = fixture();
    let result = f.verifier.verify_at(token, NOW);
    assert_eq!(
        result,
        f.verifier.verify_at(token, NOW),
        "verification is not deterministic"
    );
    if let Ok(claims) = &result {
        accepted_is_sound(token, claims);
    }
    result
}

fn part(token: &str, index: usize) -> Value {
    let text = token.split('.').nth(index).expect("three parts");
    let bytes = URL_SAFE_NO_PAD.decode(text).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn accepted_is_sound(token: &str, claims: &AccessClaims) {
    assert!(token.len() <= MAX_TOKEN_BYTES, "an oversized token passed");
    assert_eq!(token.split('.').count(), 3);

    let header = part(token, 0);
    let header = header.as_object().expect("the header is an object");
    for refused in ["jwk", "jku", "x5u", "x5c", "crit"] {
        assert!(
            !header.contains_key(refused),
            "a header with {refused} passed"
        );
    }
    let alg = header["alg"].as_str().expect("alg");
    assert!(
        ["EdDSA", "ES256", "RS256", "HS256"].contains(&alg),
        "alg {alg:?} passed"
    );
    let typ = header["typ"].as_str().expect("typ").to_ascii_lowercase();
    assert!(
        typ == "at+jwt" || typ == "application/at+jwt",
        "typ {typ:?}"
    );
    assert_eq!(
        header.get("kid").and_then(Value::as_str),
        claims.kid.as_deref()
    );
    match claims.kid.as_deref() {
        None => assert_eq!(alg, "HS256", "a token without kid passed as {alg}"),
        Some(kid) => {
            let key = fixture()
                .keys
                .iter()
                .find(|k| k.kid() == kid)
                .expect("the kid of a fixture key");
            assert_eq!(key.algorithm().as_str(), alg, "algorithm confusion");
        }
    }

    // serde_json keeps the last of duplicate keys; the verifier refuses them, so the
    // two must read the same claims.
    let payload = part(token, 1);
    let text = |name: &str| payload.get(name).and_then(Value::as_str).map(str::to_owned);
    assert_eq!(text("iss").as_deref(), Some(claims.iss.as_str()));
    assert_eq!(text("sub").as_deref(), Some(claims.sub.as_str()));
    assert_eq!(text("jti"), claims.jti);
    assert_eq!(text("sid"), claims.sid);
    assert_eq!(text("scope"), claims.scope);
    assert_eq!(text("client_id"), claims.client_id);
    let time = |name: &str| {
        payload.get(name).map(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().map(|f| f as i64))
                .expect("a numeric time")
        })
    };
    assert_eq!(time("exp"), Some(claims.exp));
    assert_eq!(time("iat"), claims.iat);
    assert_eq!(time("nbf"), claims.nbf);
    let aud: Vec<String> = match &payload["aud"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("a string audience").to_owned())
            .collect(),
        other => panic!("aud {other} passed"),
    };
    assert_eq!(aud, claims.aud);

    // The policy.
    assert_eq!(claims.iss, ISS);
    assert!(
        claims.aud.iter().any(|a| a == AUD),
        "audience {:?}",
        claims.aud
    );
    assert!(claims.exp > NOW - LEEWAY, "expired at {}", claims.exp);
    assert!(claims.nbf.is_none_or(|t| t <= NOW + LEEWAY));
    assert!(claims.iat.is_none_or(|t| t <= NOW + LEEWAY));
    // The revocation set.
    assert_ne!(claims.sid.as_deref(), Some(REVOKED_SID));
    assert_ne!(claims.jti.as_deref(), Some(REVOKED_JTI));
    assert!(
        claims.sub != CUT_OFF_USER || claims.iat.is_some_and(|iat| iat > NOW - 60),
        "a token of a cut-off user passed: iat {:?}",
        claims.iat
    );
}
