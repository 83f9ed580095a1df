//! Full verification against the raw signature check it is built on, for each
//! algorithm, in one run (issue 3, "Performance"):
//!
//! - `raw`: the signature alone, with `aws-lc-rs`, over the same signing input and
//!   the already-decoded signature (a key parsed once, as `tessera-verify` keeps
//!   it; `hmac::verify` for HS256);
//! - `tessera`: `Verifier::verify_at` — size, parse, header checks, key lookup,
//!   signature, claims, and the revocation check against a set holding a few
//!   thousand unrelated entries;
//! - `jsonwebtoken`: `jsonwebtoken::decode` with a `Validation` for the same issuer,
//!   audience and algorithm, into a claims struct of the same fields.
//!
//! The tokens are what tessera issues: the header its `SigningKey` encodes, and the
//! claims `crates/tessera-server/src/tokens.rs` serialises for a user of a password
//! grant (a `sid`, one role, two scopes, one audience).
//!
//! `cargo bench -p tessera-verify --bench verify`: criterion's figures, then the
//! same ratios measured interleaved (the three in turn, in short batches, round
//! after round), which the machine's drift does not skew. Compare figures of one
//! run only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use serde::{Deserialize, Serialize};
use tessera_keys::{HmacKey, SigningKey};
use tessera_verify::{Algorithm, Policy, RevocationEvent, Verifier, VerifyingKeys};

const ISSUER: &str = "http://127.0.0.1:7677";
const AUDIENCE: &str = "orders";
const HS256_SECRET: &[u8] = b"an HS256 shared secret of at least 32 bytes";
/// Unrelated revoked sessions and token ids in the verifier's set.
const REVOKED: usize = 2000;

/// The claims `tokens.rs` issues (same fields, same order).
#[derive(Serialize)]
struct IssuedClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
    client_id: String,
    scope: &'a str,
    sid: Option<&'a str>,
    roles: Vec<&'static str>,
}

/// What a `jsonwebtoken` user would deserialise the same token into.
#[derive(Deserialize)]
#[allow(dead_code)]
struct DecodedClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: String,
    scope: String,
    sid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn claims(now: i64) -> Vec<u8> {
    serde_json::to_vec(&IssuedClaims {
        iss: ISSUER,
        sub: "019a8f3c-6a1e-7b52-9c1d-3f4e5a6b7c8d".into(),
        aud: AUDIENCE,
        // Long enough that `jsonwebtoken`, which reads the clock, still accepts it
        // at the end of the run.
        exp: now + 3600,
        iat: now,
        jti: "q3Vx0m9rT2yLkP8aZc4NfA",
        client_id: "019a8f3b-1d2c-7e3f-8a4b-5c6d7e8f9a0b".into(),
        scope: "orders:read orders:write",
        sid: Some("Jd8Kq2LmN4pR6sT8vX0zBw"),
        roles: vec!["admin"],
    })
    .unwrap()
}

/// The raw check of one algorithm: the signature over the signing input.
enum Raw {
    Public(ParsedPublicKey),
    Hmac(Box<aws_lc_rs::hmac::Key>),
}

impl Raw {
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Raw::Public(key) => key.verify_sig(message, signature).is_ok(),
            Raw::Hmac(key) => aws_lc_rs::hmac::verify(key, message, signature).is_ok(),
        }
    }
}

fn raw_public(key: &SigningKey) -> Raw {
    let b = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap();
    Raw::Public(match (&key.public_jwk().algorithm, key.algorithm()) {
        (AlgorithmParameters::OctetKeyPair(p), tessera_keys::Algorithm::EdDSA) => {
            ParsedPublicKey::new(&ED25519, b(&p.x)).unwrap()
        }
        (AlgorithmParameters::EllipticCurve(p), tessera_keys::Algorithm::ES256) => {
            let mut point = vec![4];
            point.extend(b(&p.x));
            point.extend(b(&p.y));
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).unwrap()
        }
        (AlgorithmParameters::RSA(p), tessera_keys::Algorithm::RS256) => {
            let der = RsaPublicKeyComponents {
                n: b(&p.n),
                e: b(&p.e),
            }
            .as_der()
            .unwrap();
            ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der.as_ref()).unwrap()
        }
        _ => unreachable!(),
    })
}

struct Case {
    name: &'static str,
    token: String,
    raw: Raw,
    jwt_key: jsonwebtoken::DecodingKey,
    jwt_alg: jsonwebtoken::Algorithm,
}

/// Everything measured: the verifier, and per algorithm the token with what the
/// raw check and `jsonwebtoken` need.
struct Bench {
    now: i64,
    verifier: Verifier,
    cases: Vec<Prepared>,
}

struct Prepared {
    case: Case,
    /// `header.payload`, and the signature decoded.
    input: String,
    signature: Vec<u8>,
    validation: jsonwebtoken::Validation,
}

impl Prepared {
    fn raw(&self) -> bool {
        self.case
            .raw
            .verify(black_box(self.input.as_bytes()), black_box(&self.signature))
    }

    fn tessera(&self, verifier: &Verifier, now: i64) -> bool {
        verifier.verify_at(black_box(&self.case.token), now).is_ok()
    }

    fn jsonwebtoken(&self) -> bool {
        jsonwebtoken::decode::<DecodedClaims>(
            black_box(&self.case.token),
            &self.case.jwt_key,
            &self.validation,
        )
        .is_ok()
    }
}

impl Bench {
    fn new() -> Self {
        let now = now();
        let claims = claims(now);
        let mut cases = Vec::new();
        let mut jwks = JwkSet { keys: Vec::new() };
        for algorithm in tessera_keys::Algorithm::ASYMMETRIC {
            let key =
                SigningKey::from_pkcs8(algorithm, &tessera_keys::generate(algorithm).unwrap())
                    .unwrap();
            jwks.keys.push(key.public_jwk().clone());
            cases.push(Case {
                name: algorithm.as_str(),
                token: key.sign_access_token(&claims).unwrap(),
                raw: raw_public(&key),
                jwt_key: jsonwebtoken::DecodingKey::from_jwk(key.public_jwk()).unwrap(),
                jwt_alg: algorithm.as_str().parse().unwrap(),
            });
        }
        cases.push(Case {
            name: "HS256",
            token: HmacKey::new(HS256_SECRET).sign_access_token(&claims),
            raw: Raw::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                HS256_SECRET,
            ))),
            jwt_key: jsonwebtoken::DecodingKey::from_secret(HS256_SECRET),
            jwt_alg: jsonwebtoken::Algorithm::HS256,
        });

        let mut policy = Policy::new(ISSUER, AUDIENCE);
        policy.algorithms.push(Algorithm::HS256);
        let verifier = Verifier::new(
            policy,
            VerifyingKeys::from_jwks(&jwks, false).with_hs256_secret(HS256_SECRET),
        );
        verifier.update_revocations(|set| {
            for i in 0..REVOKED {
                let sequence = 2 * i as u64;
                set.apply(
                    sequence + 1,
                    RevocationEvent::Session(format!("revoked-session-{i:016}")),
                    now + 300,
                );
                set.apply(
                    sequence + 2,
                    RevocationEvent::Token(format!("revoked-token-{i:018}")),
                    now + 300,
                );
            }
        });

        let cases = cases
            .into_iter()
            .map(|case| {
                let (input, signature) = case.token.rsplit_once('.').unwrap();
                let (input, signature) =
                    (input.to_owned(), URL_SAFE_NO_PAD.decode(signature).unwrap());
                let mut validation = jsonwebtoken::Validation::new(case.jwt_alg);
                validation.set_issuer(&[ISSUER]);
                validation.set_audience(&[AUDIENCE]);
                validation.leeway = 30;
                let prepared = Prepared {
                    case,
                    input,
                    signature,
                    validation,
                };
                // All three accept the token, and tessera and jsonwebtoken read it
                // alike.
                assert!(prepared.raw() && prepared.tessera(&verifier, now));
                let verified = verifier.verify_at(&prepared.case.token, now).unwrap();
                let decoded = jsonwebtoken::decode::<DecodedClaims>(
                    &prepared.case.token,
                    &prepared.case.jwt_key,
                    &prepared.validation,
                )
                .unwrap();
                assert_eq!(verified.roles, decoded.claims.roles);
                assert_eq!(verified.sub, decoded.claims.sub);
                prepared
            })
            .collect();
        Self {
            now,
            verifier,
            cases,
        }
    }

    fn criterion(&self, c: &mut Criterion) {
        for prepared in &self.cases {
            let mut group = c.benchmark_group(format!("verify/{}", prepared.case.name));
            group.bench_function("raw", |b| b.iter(|| prepared.raw()));
            group.bench_function("tessera", |b| {
                b.iter(|| prepared.tessera(&self.verifier, self.now))
            });
            group.bench_function("jsonwebtoken", |b| b.iter(|| prepared.jsonwebtoken()));
            group.finish();
        }
    }

    /// The ratios again, with the three run in turn in short batches, round after
    /// round: on a machine whose speed drifts from second to second, criterion's one
    /// function after another can put a slow minute on one side of a ratio only.
    fn interleaved(&self) {
        const ROUNDS: usize = 31;
        println!();
        println!("interleaved: {ROUNDS} rounds of ~10 ms batches of each, in turn; median round");
        println!(
            "{:<6} {:>10} {:>10} {:>6}  {:>10} {:>6}  (tessera ratio: lowest..highest quartile)",
            "", "raw", "tessera", "ratio", "jwt", "ratio"
        );
        for prepared in &self.cases {
            let batch = batch_size(|| prepared.raw());
            let mut rounds: Vec<[f64; 3]> = (0..ROUNDS)
                .map(|_| {
                    [
                        time_batch(batch, || prepared.raw()),
                        time_batch(batch, || prepared.tessera(&self.verifier, self.now)),
                        time_batch(batch, || prepared.jsonwebtoken()),
                    ]
                })
                .collect();
            let median = |values: &mut Vec<f64>| {
                values.sort_by(f64::total_cmp);
                values[values.len() / 2]
            };
            let mut tessera: Vec<f64> = rounds.iter().map(|r| r[1] / r[0]).collect();
            let mut jwt: Vec<f64> = rounds.iter().map(|r| r[2] / r[0]).collect();
            let (t, j) = (median(&mut tessera), median(&mut jwt));
            let (low, high) = (tessera[ROUNDS / 4], tessera[ROUNDS * 3 / 4]);
            rounds.sort_by(|a, b| (a[1] / a[0]).total_cmp(&(b[1] / b[0])));
            let [raw, tes, jw] = rounds[ROUNDS / 2];
            println!(
                "{:<6} {:>10} {:>10} {t:>6.3}  {:>10} {j:>6.3}  ({low:.3}..{high:.3})",
                prepared.case.name,
                show(raw),
                show(tes),
                show(jw),
            );
        }
    }
}

/// Iterations of `f` that take about 10 ms.
fn batch_size(mut f: impl FnMut() -> bool) -> u32 {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_millis(10) {
        black_box(f());
        n += 1;
    }
    n.max(1)
}

/// Seconds per call of `f`, over `n` calls.
fn time_batch(n: u32, mut f: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    start.elapsed().as_secs_f64() / f64::from(n)
}

fn show(seconds: f64) -> String {
    if seconds < 1e-6 {
        format!("{:.0} ns", seconds * 1e9)
    } else {
        format!("{:.2} µs", seconds * 1e6)
    }
}

fn main() {
    let bench = Bench::new();
    let mut criterion = Criterion::default().configure_from_args();
    bench.criterion(&mut criterion);
    criterion.final_summary();
    // Not in `cargo test --benches` (criterion's --test mode) or --list.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        bench.interleaved();
    }
}
