//! When PostgreSQL goes away: calls fail quickly instead of hanging, the clients
//! generation stops vouching for caches, and a lost listener comes back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use sqlx::Connection;
use tessera_core::{Algorithm, TokenFormat};
use tessera_core::{Audience, ClientId, ClientName, GrantType, Scopes, Timestamp};
use tessera_store::{Client, ClientStore, Health, StoreError};
use tessera_store_postgres::{ACQUIRE_TIMEOUT, PostgresStore};
use tessera_testkit::Postgres;

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 10 s: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_quickly_once_the_server_is_gone() {
    let pg = Postgres::start();
    let store = PostgresStore::open(&pg.url()).await.unwrap();
    store.ping().await.unwrap();
    assert!(store.cache_generation().is_some());

    pg.stop();
    for attempt in 0..3 {
        let started = Instant::now();
        let answer = tokio::time::timeout(ACQUIRE_TIMEOUT * 3, store.ping())
            .await
            .unwrap_or_else(|_| panic!("ping {attempt} hung"));
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "ping {attempt} after the stop: {answer:?}"
        );
        assert!(
            started.elapsed() <= ACQUIRE_TIMEOUT + Duration::from_secs(2),
            "ping {attempt} took {:?}",
            started.elapsed()
        );
    }
    eventually(
        "the clients generation is unknown while not listening",
        || store.cache_generation().is_none(),
    )
    .await;
    // Dropped while its listener retries: the task must end, not keep retrying.
    drop(store);
}

fn client(name: &str) -> Client {
    Client {
        id: ClientId::generate(),
        name: ClientName::parse(name).unwrap(),
        secret_hash: None,
        grants: vec![GrantType::ClientCredentials],
        scopes: Scopes::parse("read").unwrap(),
        audiences: vec![Audience::parse("orders").unwrap()],
        token_format: TokenFormat::Jwt,
        algorithm: Algorithm::EdDSA,
        access_ttl: Duration::from_secs(300),
        created_at: Timestamp::now(),
        dpop_bound_access_tokens: false,
        code_flow: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_reconnects_and_invalidates_what_it_may_have_missed() {
    let pg = Postgres::start();
    let store = PostgresStore::open(&pg.url()).await.unwrap();
    let other = PostgresStore::open(&pg.url()).await.unwrap();
    let before = store.cache_generation().unwrap();

    // Kill every listening connection (as a proxy or a failover would).
    let mut admin = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, 2, "both stores' listeners");
    eventually("the listener is back, with a new generation", || {
        store.cache_generation().is_some_and(|g| g != before)
    })
    .await;

    // And it listens again: a change elsewhere still reaches it.
    eventually("the other store's listener is back", || {
        other.cache_generation().is_some()
    })
    .await;
    let before = store.cache_generation().unwrap();
    other
        .create_client(client("after-reconnect"))
        .await
        .unwrap();
    eventually("a change after the reconnect arrives", || {
        store.cache_generation().is_some_and(|g| g != before)
    })
    .await;
    store.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_store_answers_and_listens_again() {
    let pg = Postgres::start();
    let store = PostgresStore::open(&pg.url()).await.unwrap();
    let other = PostgresStore::open(&pg.url()).await.unwrap();
    // The testkit's server runs with synchronous_commit off, and stop() is a crash:
    // a checkpoint makes the schema just committed survive it.
    let mut admin = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    sqlx::query("CHECKPOINT").execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    pg.stop();
    eventually("not listening while the server is down", || {
        store.cache_generation().is_none()
    })
    .await;
    let answer = store.ping().await;
    assert!(
        matches!(answer, Err(StoreError::Unavailable(_))),
        "{answer:?}"
    );

    pg.start_again();
    eventually("listening again after the restart", || {
        store.cache_generation().is_some() && other.cache_generation().is_some()
    })
    .await;
    let mut failures = 0;
    while let Err(error) = store.ping().await {
        failures += 1;
        assert!(failures < 20, "still failing after the restart: {error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = store.cache_generation().unwrap();
    other.create_client(client("after-restart")).await.unwrap();
    eventually("a change after the restart arrives", || {
        store.cache_generation().is_some_and(|g| g != before)
    })
    .await;
    store.close().await;
    other.close().await;
}
