//! Verifying a DPoP request against the raw signature checks it is built on
//! (issue 17's goal: ≤ 1.1 × (the token's raw check + the proof's raw check),
//! with 100,000 entries in the replay cache):
//!
//! - `raw`: the ES256 token's signature and the ES256 proof's signature, each with
//!   `aws-lc-rs` over its signing input, the key parsed once and the signature
//!   decoded already;
//! - `tessera`: `Verifier::verify_presented`, what a resource service runs: the
//!   token (everything `verify` checks, `cnf` included), then the proof for this
//!   request through a `ProofChecker` (parse, typ, alg, the embedded key, parsed
//!   once per header and kept, signature, htm, htu, iat, ath, the key against
//!   `cnf.jkt`) and its replay set, already holding 100,000 proofs. Each iteration
//!   presents a proof not seen before, as a client does.
//!
//! `cargo bench -p tessera-verify --bench dpop`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    ParsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use serde_json::json;
use tessera_keys::SigningKey;
use tessera_verify::dpop::{DpopError, VerifiedProof};
use tessera_verify::{Policy, Presented, ProofChecker, Scheme, Verifier, VerifyingKeys};

const ISSUER: &str = "http://127.0.0.1:7677";
const AUDIENCE: &str = "orders";
const URL: &str = "https://api.example.com/orders";
const CACHED: usize = 100_000;
/// Proofs signed beforehand, each used once.
const PROOFS: usize = 60_000;

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn split(jws: &str) -> (Vec<u8>, Vec<u8>) {
    let (input, signature) = jws.rsplit_once('.').unwrap();
    (
        input.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(signature).unwrap(),
    )
}

fn dpop(c: &mut Criterion) {
    let now = now();
    // The token: ES256, bound to the client's key.
    let issuer_key = SigningKey::from_pkcs8(
        tessera_keys::Algorithm::ES256,
        &tessera_keys::generate(tessera_keys::Algorithm::ES256).unwrap(),
    )
    .unwrap();
    let client = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = client.public_key().as_ref().to_vec();
    let jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    let jkt =
        tessera_verify::dpop::thumbprint(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
    let claims = json!({
        "iss": ISSUER, "sub": "019a8f3c-6a1e-7b52-9c1d-3f4e5a6b7c8d", "aud": AUDIENCE,
        "exp": now + 3600, "iat": now, "jti": "q3Vx0m9rT2yLkP8aZc4NfA",
        "client_id": "019a8f3b-1d2c-7e3f-8a4b-5c6d7e8f9a0b", "scope": "orders:read",
        "cnf": {"jkt": jkt},
    });
    let token = issuer_key
        .sign_access_token(&serde_json::to_vec(&claims).unwrap())
        .unwrap();
    let verifier = Verifier::new(
        Policy::new(ISSUER, AUDIENCE),
        VerifyingKeys::from_jwks(
            &JwkSet {
                keys: vec![issuer_key.public_jwk().clone()],
            },
            false,
        ),
    );
    let ath = URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()));

    // Proofs, each with its own jti, signed beforehand.
    let header =
        URL_SAFE_NO_PAD.encode(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).to_string());
    let rng = SystemRandom::new();
    let proofs: Vec<String> = (0..PROOFS)
        .map(|i| {
            let payload = URL_SAFE_NO_PAD.encode(
                json!({"jti": format!("proof-{i:08}"), "htm": "GET", "htu": URL,
                       "iat": now, "ath": ath})
                .to_string(),
            );
            let input = format!("{header}.{payload}");
            let signature = client.sign(&rng, input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
        })
        .collect();

    // The raw checks of the same bytes.
    let issuer_point = match &issuer_key.public_jwk().algorithm {
        AlgorithmParameters::EllipticCurve(p) => [
            vec![4],
            URL_SAFE_NO_PAD.decode(&p.x).unwrap(),
            URL_SAFE_NO_PAD.decode(&p.y).unwrap(),
        ]
        .concat(),
        _ => unreachable!(),
    };
    let issuer_raw = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, issuer_point).unwrap();
    let client_raw = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).unwrap();
    let (token_input, token_signature) = split(&token);
    let (proof_input, proof_signature) = split(&proofs[0]);
    let raw = || {
        issuer_raw
            .verify_sig(black_box(&token_input), black_box(&token_signature))
            .is_ok()
            && client_raw
                .verify_sig(black_box(&proof_input), black_box(&proof_signature))
                .is_ok()
    };
    assert!(raw());

    // The path a resource service runs: `Verifier::verify_presented` with a
    // `ProofChecker` whose replay set already holds 100,000 proofs.
    let checker = ProofChecker::new(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(5),
        CACHED + PROOFS + 1,
    );
    for i in 0..CACHED {
        let earlier = VerifiedProof {
            jkt: jkt.clone(),
            jti: format!("earlier-{i:08}"),
            iat: now,
            algorithm: tessera_verify::Algorithm::ES256,
            nonce: None,
        };
        checker.first_use(&earlier, now).unwrap();
    }
    let mut next = 0usize;
    let mut tessera = || {
        let proof = &proofs[next % PROOFS];
        next += 1;
        let presented = Presented {
            scheme: Scheme::Dpop,
            token: black_box(&token),
            proof: Some(black_box(proof)),
        };
        match verifier.verify_presented(&presented, "GET", URL, &checker) {
            Ok(claims) => claims.jkt() == Some(jkt.as_str()),
            // After every proof was used once, repeats are refused: the same work.
            Err(tessera_verify::VerifyError::Proof(DpopError::Replayed)) => next > PROOFS,
            Err(_) => false,
        }
    };
    assert!(tessera());

    let mut group = c.benchmark_group("dpop");
    group.bench_function("raw: token + proof signatures (baseline)", |b| {
        b.iter(|| black_box(raw()));
    });
    group.bench_function("token + proof + replay check (100k cached)", |b| {
        b.iter(|| black_box(tessera()));
    });
    group.finish();
}

criterion_group!(benches, dpop);
criterion_main!(benches);
