//! The shared suites, on a split deployment: PostgreSQL for accounts, clients, keys,
//! refresh families and the log; Redis for sessions, opaque tokens, authorization
//! codes and presence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_store::{Health, StoreSet};
use tessera_store_postgres::PostgresStore;
use tessera_store_redis::{OpenError, RedisStore};
use tessera_testkit::{Postgres, Redis};

#[tokio::test]
async fn a_split_store_conforms() {
    let pg = Postgres::start();
    let redis = Redis::start();
    let postgres = Arc::new(PostgresStore::open(&pg.url()).await.unwrap());
    let store = Arc::new(
        RedisStore::open(&redis.url(), postgres.clone(), postgres.clone())
            .await
            .unwrap(),
    );
    let set = StoreSet {
        accounts: postgres.clone(),
        sessions: store.clone(),
        refresh: postgres.clone(),
        opaque: store.clone(),
        codes: store.clone(),
        ceremonies: store.clone(),
        exchange: Arc::new(tessera_store::SeparateCodeExchange {
            codes: store.clone(),
            backchannel: postgres.clone(),
            refresh: postgres.clone(),
        }),
        backchannel: postgres.clone(),
        log: postgres.clone(),
        clients: postgres.clone(),
        keys: postgres.clone(),
        presence: store.clone(),
        audit: postgres.clone(),
        health: vec![postgres.clone(), store.clone()],
        also_purge: vec![postgres.clone()],
    };
    tessera_store::conformance::run(&set).await;
    tessera_store::conformance::presence(&*store).await;
    tessera_store::conformance::rate_limits(&*store).await;
    set.ping().await.unwrap();
    postgres.close().await;
}

#[tokio::test]
async fn an_unreachable_server_is_named_without_its_password() {
    let pg = Postgres::start();
    let postgres = Arc::new(PostgresStore::open(&pg.url()).await.unwrap());
    let port = tessera_testkit::free_port();
    let started = Instant::now();
    let error = RedisStore::open(
        &format!("redis://tessera:hunter2-secret@127.0.0.1:{port}/2"),
        postgres.clone(),
        postgres.clone(),
    )
    .await
    .err()
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "it gave up in time"
    );
    assert!(matches!(error, OpenError::Connect { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("redis://tessera@127.0.0.1:{port}/2")),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");

    let error = RedisStore::open(
        "redis://tessera:hunter2-secret@127.0.0.1:notaport/x",
        postgres.clone(),
        postgres.clone(),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(error, OpenError::Url(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
    postgres.close().await;
}
