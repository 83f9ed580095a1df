//! Issuing: signed EdDSA access tokens per second against raw Ed25519 signing of
//! the same bytes (issue 3, "Performance"), in one run.
//!
//! - `raw`: `aws-lc-rs` `Ed25519KeyPair::sign` over the signing input of a token
//!   (`header.payload`), with the key parsed once;
//! - `token`: what `TokenIssuer::issue_jwt` (crates/tessera-server/src/tokens.rs)
//!   does for a JWT client, with the same claims struct: the clock, a random
//!   `jti`, the scope, subject and client id as text, `serde_json` serialisation,
//!   and `SigningKey::sign_access_token` (base64url of the claims, the signature,
//!   base64url of it). Left out: the key ring's lock-free load of the current
//!   signer and the metrics counter, tens of nanoseconds against ~11 µs.
//!
//! `cargo bench -p tessera-keys --bench issue`: criterion's figures (tokens per
//! second as "thrpt"), then the ratio measured interleaved, which the machine's
//! drift does not skew. Compare figures of one run only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput};
use serde::Serialize;
use tessera_core::{ClientId, Role, Roles, Scopes, SessionSecret, Timestamp, UserId};
use tessera_keys::{Algorithm, SigningKey};

/// `tokens.rs`'s `AccessClaims`, field for field.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
    client_id: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<&'static str>,
}

/// What a request brings: a user with a session, through a client, for an
/// audience, with two scopes.
struct Request {
    issuer: String,
    audience: String,
    user: UserId,
    roles: Roles,
    session: tessera_core::SessionId,
    client: ClientId,
    scopes: Scopes,
    ttl_seconds: u64,
}

/// `issue_jwt`, up to the signature.
fn issue(key: &SigningKey, request: &Request) -> String {
    let iat = Timestamp::now().as_millis() / 1000;
    let jti = URL_SAFE_NO_PAD.encode(tessera_core::random_bytes::<16>());
    let scope = request.scopes.to_string();
    let claims = AccessClaims {
        iss: &request.issuer,
        sub: request.user.to_string(),
        aud: &request.audience,
        exp: iat.saturating_add(i64::try_from(request.ttl_seconds).unwrap_or(i64::MAX)),
        iat,
        jti: &jti,
        client_id: request.client.to_string(),
        scope: &scope,
        sid: Some(request.session.as_str()),
        roles: request.roles.iter().map(Role::as_str).collect(),
    };
    let claims = serde_json::to_vec(&claims).unwrap();
    key.sign_access_token(&claims).unwrap()
}

fn main() {
    let der = tessera_keys::generate(Algorithm::EdDSA).unwrap();
    let key = SigningKey::from_pkcs8(Algorithm::EdDSA, &der).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(der.as_bytes()).unwrap();
    let request = Request {
        issuer: "http://127.0.0.1:7677".into(),
        audience: "orders".into(),
        user: UserId::generate(),
        roles: Roles::new(vec![Role::Admin]),
        session: SessionSecret::generate().session_id(),
        client: ClientId::generate(),
        scopes: Scopes::parse("orders:read orders:write").unwrap(),
        ttl_seconds: 300,
    };
    let token = issue(&key, &request);
    let input = token.rsplit_once('.').unwrap().0.to_owned();
    let raw = || {
        black_box(pair.sign(black_box(input.as_bytes())));
    };
    let signed = || {
        black_box(issue(&key, black_box(&request)));
    };

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("issue/EdDSA");
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw", |b| b.iter(raw));
    group.bench_function("token", |b| b.iter(signed));
    group.finish();
    criterion.final_summary();

    // The ratio again with the two in turn, in short batches, round after round,
    // which the machine's drift does not skew (not in criterion's --test mode).
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        const ROUNDS: usize = 31;
        let batch = {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < Duration::from_millis(10) {
                raw();
                n += 1;
            }
            n
        };
        let time = |f: &dyn Fn()| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed().as_secs_f64() / f64::from(batch)
        };
        let mut rounds: Vec<(f64, f64)> =
            (0..ROUNDS).map(|_| (time(&raw), time(&signed))).collect();
        rounds.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
        let (raw_s, token_s) = rounds[ROUNDS / 2];
        let quartile = |i: usize| rounds[i].0 / rounds[i].1;
        println!();
        println!("interleaved: {ROUNDS} rounds of ~10 ms batches of each, in turn; median round");
        println!(
            "raw signatures/s {:.0}, tokens/s {:.0}, tokens per raw signature {:.3} ({:.3}..{:.3})",
            1.0 / raw_s,
            1.0 / token_s,
            raw_s / token_s,
            quartile(ROUNDS / 4),
            quartile(ROUNDS * 3 / 4),
        );
    }
}
