//! A `RemoteVerifier` whose issuer's revocation log is replaced under it (the issuer
//! moved to a database whose log was numbered anew, or restored a backup): the
//! feed's heartbeat then carries a sequence below the verifier's position, and the
//! verifier must read the feed again from the start instead of waiting for the new
//! log's numbers to pass its old position.
//!
//! The issuer here is a stub speaking tessera's protocol (metadata, JWKS, token
//! endpoint, and `/v1/revocations` as Server-Sent Events with the real server's
//! rules: entries after `Last-Event-ID`, then a heartbeat with the log's sequence),
//! so that the log can be swapped at will. `crates/tessera/tests/api/verifier.rs`
//! does the same against the real server, with a restored backup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tessera_keys::{Algorithm, SigningKey};
use tessera_verify::{ClientCredentials, RemoteVerifier, RevokedBy, VerifyError};

/// How often the stub's feed looks at its log, and sends a heartbeat.
const TICK: Duration = Duration::from_millis(50);

/// One revocation log: its entries (sequence, `jti`) and its high-water mark.
#[derive(Clone, Default)]
struct Log {
    entries: Vec<(u64, String)>,
    latest: u64,
    /// Bumped when the log is replaced: open streams end, as when a server stops.
    generation: u64,
}

struct Stub {
    issuer: String,
    jwks: Value,
    log: Mutex<Log>,
    /// The `Last-Event-ID` of every feed request, `None` when absent.
    resumed_from: Mutex<Vec<Option<u64>>>,
}

impl Stub {
    fn revoke(&self, sequence: u64, jti: &str) {
        let mut log = self.log.lock().unwrap();
        log.entries.push((sequence, jti.to_owned()));
        log.latest = log.latest.max(sequence);
    }

    /// The issuer now runs on another log, numbered from 0.
    fn replace_log(&self) {
        let mut log = self.log.lock().unwrap();
        *log = Log {
            generation: log.generation + 1,
            ..Log::default()
        };
    }
}

fn revocation_event(sequence: u64, jti: &str) -> Event {
    Event::default()
        .id(sequence.to_string())
        .event("revocation")
        .data(
            json!({
                "sequence": sequence,
                "kind": "token",
                "id": jti,
                "user": null,
                "reason": "revoked",
                "at": "2020-01-01T00:00:00Z",
                "expires_at": unix_now() + 3600,
            })
            .to_string(),
        )
}

async fn feed(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let after = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    stub.resumed_from.lock().unwrap().push(after);
    let generation = stub.log.lock().unwrap().generation;
    let stream = futures::stream::unfold(
        (stub, after.unwrap_or(0), Vec::<Event>::new(), true),
        move |(stub, mut position, mut pending, first)| async move {
            if !first && pending.is_empty() {
                tokio::time::sleep(TICK).await;
            }
            if pending.is_empty() {
                let log = stub.log.lock().unwrap().clone();
                if log.generation != generation {
                    return None;
                }
                let after = position;
                for (sequence, jti) in log.entries.iter().filter(|(s, _)| *s > after) {
                    pending.push(revocation_event(*sequence, jti));
                    position = *sequence;
                }
                // The log's own sequence, whatever the client resumed from.
                pending.push(
                    Event::default()
                        .event("heartbeat")
                        .data(json!({ "sequence": log.latest }).to_string()),
                );
                pending.reverse();
            }
            let event = pending.pop()?;
            Some((Ok(event), (stub, position, pending, false)))
        },
    );
    Sse::new(stream)
}

async fn start_stub(key: &SigningKey) -> Arc<Stub> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let stub = Arc::new(Stub {
        issuer: issuer.clone(),
        jwks: json!({ "keys": [key.public_jwk()] }),
        log: Mutex::new(Log::default()),
        resumed_from: Mutex::new(Vec::new()),
    });
    let metadata = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_feed_endpoint": format!("{issuer}/v1/revocations"),
    });
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { Json(metadata) }),
        )
        .route(
            "/jwks",
            get(|State(stub): State<Arc<Stub>>| async move { Json(stub.jwks.clone()) }),
        )
        .route(
            "/token",
            post(|| async { Json(json!({"access_token": "feed", "expires_in": 3600})) }),
        )
        .route("/v1/revocations", get(feed))
        .with_state(stub.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    stub
}

fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn token(key: &SigningKey, issuer: &str, jti: &str) -> String {
    let now = unix_now();
    let claims = json!({
        "iss": issuer, "sub": "user-1", "aud": "orders", "exp": now + 300, "iat": now,
        "jti": jti, "client_id": "app", "scope": "orders:read",
    });
    key.sign_access_token(claims.to_string().as_bytes())
        .unwrap()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: still not true after 5 s");
}

#[tokio::test]
async fn a_verifier_ahead_of_a_replaced_log_reads_it_again_and_refuses_what_it_revokes() {
    let key = SigningKey::from_pkcs8(
        Algorithm::EdDSA,
        &tessera_keys::generate(Algorithm::EdDSA).unwrap(),
    )
    .unwrap();
    let stub = start_stub(&key).await;
    // The log the verifier starts on is far along: older entries purged.
    stub.revoke(48, "old-48");
    stub.revoke(50, "old-50");
    let verifier = RemoteVerifier::builder(&stub.issuer)
        .audience("orders")
        .client(ClientCredentials::new("orders-service", "secret"))
        .build()
        .await
        .unwrap();
    assert_eq!(verifier.revocation_position(), 50);
    let old = token(&key, &stub.issuer, "old-50");
    let fresh = token(&key, &stub.issuer, "new-1");
    let untouched = token(&key, &stub.issuer, "untouched");
    assert_eq!(
        verifier.verify(&old).await.unwrap_err(),
        VerifyError::Revoked(RevokedBy::Token)
    );
    assert!(verifier.verify(&fresh).await.is_ok());

    // The issuer comes back on another log (say a restored backup of a database
    // that never numbered past 1), where `new-1` is revoked under sequence 1: below
    // the verifier's position, so resuming after 50 would never deliver it.
    stub.replace_log();
    stub.revoke(1, "new-1");
    eventually("the verifier starts the replaced log over", || {
        verifier.revocation_position() == 1
    })
    .await;
    eventually("the feed is fresh again", || {
        verifier
            .feed_silence()
            .is_some_and(|s| s < Duration::from_secs(1))
    })
    .await;
    assert_eq!(
        verifier.verify(&fresh).await.unwrap_err(),
        VerifyError::Revoked(RevokedBy::Token),
        "what the new log revokes is refused"
    );
    assert_eq!(
        verifier.verify(&old).await.unwrap_err(),
        VerifyError::Revoked(RevokedBy::Token),
        "what was known revoked stays refused"
    );
    assert!(verifier.verify(&untouched).await.is_ok());
    let resumed = stub.resumed_from.lock().unwrap().clone();
    assert_eq!(resumed.first(), Some(&None), "{resumed:?}");
    assert!(
        resumed.contains(&Some(50)) && resumed.last() == Some(&None),
        "resumed after 50, then read from the start: {resumed:?}"
    );

    // It follows the new log from there on, by its numbers.
    let later = token(&key, &stub.issuer, "new-2");
    stub.revoke(2, "new-2");
    eventually("the next revocation arrives", || {
        verifier.revocation_position() == 2
    })
    .await;
    assert_eq!(
        verifier.verify(&later).await.unwrap_err(),
        VerifyError::Revoked(RevokedBy::Token)
    );
}

#[tokio::test]
async fn a_heartbeat_at_or_above_the_position_changes_nothing() {
    let key = SigningKey::from_pkcs8(
        Algorithm::EdDSA,
        &tessera_keys::generate(Algorithm::EdDSA).unwrap(),
    )
    .unwrap();
    let stub = start_stub(&key).await;
    stub.revoke(7, "seven");
    let verifier = RemoteVerifier::builder(&stub.issuer)
        .audience("orders")
        .client(ClientCredentials::new("orders-service", "secret"))
        .build()
        .await
        .unwrap();
    assert_eq!(verifier.revocation_position(), 7);
    // Many heartbeats at 7, then a log that grew past it.
    tokio::time::sleep(TICK * 6).await;
    stub.revoke(9, "nine");
    eventually("the entry arrives", || verifier.revocation_position() == 9).await;
    tokio::time::sleep(TICK * 4).await;
    assert_eq!(
        *stub.resumed_from.lock().unwrap(),
        [None],
        "one stream, never restarted"
    );
}
