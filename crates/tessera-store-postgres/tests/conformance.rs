//! The shared behaviour suite, and opening: schema versions and connection errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use sqlx::Connection;
use tessera_core::{Roles, Timestamp, UserId, Username};
use tessera_store::{AccountStore, NewUser};
use tessera_store_postgres::{MigrationError, OpenError, PostgresStore, SCHEMA_VERSION};
use tessera_testkit::Postgres;

async fn schema_version(url: &str) -> i64 {
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT version FROM tessera_schema")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_store_conforms() {
    let pg = Postgres::start();
    let store = PostgresStore::open(&pg.url()).await.unwrap();
    tessera_store::conformance::run(&store).await;
    tessera_store::conformance::presence(&store).await;
    store.close().await;
}

#[tokio::test]
async fn reopening_keeps_data_and_migrates_nothing() {
    let pg = Postgres::start();
    let first = PostgresStore::open(&pg.url()).await.unwrap();
    assert_eq!(schema_version(&pg.url()).await, SCHEMA_VERSION);
    let username = Username::parse("kept").unwrap();
    first
        .create_user(NewUser {
            id: UserId::generate(),
            username: username.clone(),
            password_hash: "$argon2id$kept".into(),
            roles: Roles::default(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    first.close().await;

    let second = PostgresStore::open(&pg.url()).await.unwrap();
    assert_eq!(schema_version(&pg.url()).await, SCHEMA_VERSION);
    let kept = second.user_credentials(&username).await.unwrap().unwrap();
    assert_eq!(kept.password_hash, "$argon2id$kept");
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_opening_a_new_database_together_migrate_it_once() {
    let pg = Postgres::start();
    let url = pg.url();
    let opens = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { PostgresStore::open(&url).await })
    });
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().unwrap());
    }
    assert_eq!(schema_version(&url).await, SCHEMA_VERSION);
    for store in stores {
        store.close().await;
    }
}

#[tokio::test]
async fn a_newer_schema_is_used_while_it_only_added_and_refused_once_it_took_away() {
    let pg = Postgres::start();
    PostgresStore::open(&pg.url()).await.unwrap().close().await;
    let mut connection = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    sqlx::query("UPDATE tessera_schema SET version = $1")
        .bind(SCHEMA_VERSION + 1)
        .execute(&mut connection)
        .await
        .unwrap();
    // The next release migrated, adding only: this version runs on it.
    PostgresStore::open(&pg.url()).await.unwrap().close().await;
    // A later one took something away and said so.
    sqlx::query("UPDATE tessera_schema SET oldest_compatible = $1")
        .bind(SCHEMA_VERSION + 1)
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();

    let error = PostgresStore::open(&pg.url()).await.err().unwrap();
    assert!(
        matches!(
            error,
            OpenError::Migration(MigrationError::NewerSchema { found, .. }) if found == SCHEMA_VERSION + 1
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("newer than this tessera knows"),
        "{message}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{}", pg.port())),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    let port = tessera_testkit::free_port();
    let started = Instant::now();
    let error = PostgresStore::open(&format!(
        "postgres://tessera:hunter2-secret@127.0.0.1:{port}/tessera"
    ))
    .await
    .err()
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "it gave up in time"
    );
    let message = error.to_string();
    assert!(matches!(error, OpenError::Connect { .. }), "{error:?}");
    assert!(
        message.contains(&format!("postgres://tessera@127.0.0.1:{port}/tessera")),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");

    let error = PostgresStore::open("postgres://tessera:hunter2-secret@127.0.0.1:notaport/x")
        .await
        .err()
        .unwrap();
    assert!(matches!(error, OpenError::Url(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
}

/// Accounts from before skeletons were kept (rows without one, as migration 2 leaves
/// them) get theirs at the next open, oldest first: of existing look-alikes nothing
/// is lost, the oldest holds the look, the others are recorded as its look-alikes,
/// and no further one can register.
#[tokio::test]
async fn existing_look_alikes_are_kept_and_the_oldest_holds_the_look() {
    use tessera_store::CreateUserError;
    let pg = Postgres::start();
    PostgresStore::open(&pg.url()).await.unwrap().close().await;
    let mut connection = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let accounts = [
        ("admin", 2_000_i64),
        ("\u{430}dmin", 1_000),
        ("adm\u{131}n", 3_000),
        ("bob", 1_500),
    ];
    let mut ids = Vec::new();
    for (name, created_at) in accounts {
        let id = UserId::generate();
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(format!("$argon2id$fake${name}"))
        .bind(created_at)
        .execute(&mut connection)
        .await
        .unwrap();
        ids.push(id);
    }
    connection.close().await.unwrap();
    let columns = || async {
        let mut connection = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT username, username_skeleton, look_alike_of FROM users ORDER BY created_at",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap();
        connection.close().await.unwrap();
        rows
    };

    let store = PostgresStore::open(&pg.url()).await.unwrap();
    for (name, _) in accounts {
        let kept = store
            .user_credentials(&Username::parse(name).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.password_hash, format!("$argon2id$fake${name}"));
    }
    let skeleton = Username::parse("admin").unwrap().skeleton();
    let oldest = ids[1].to_string();
    assert_eq!(
        columns().await,
        [
            ("\u{430}dmin".to_owned(), Some(skeleton), None),
            ("bob".to_owned(), Some("bob".to_owned()), None),
            ("admin".to_owned(), None, Some(oldest.clone())),
            ("adm\u{131}n".to_owned(), None, Some(oldest)),
        ]
    );
    let again = store
        .create_user(NewUser {
            id: UserId::generate(),
            username: Username::parse("adrnin").unwrap(),
            password_hash: "x".into(),
            roles: Roles::default(),
            created_at: Timestamp::now(),
        })
        .await;
    assert!(
        matches!(again, Err(CreateUserError::LookAlike)),
        "{again:?}"
    );
    store.close().await;

    let before = columns().await;
    PostgresStore::open(&pg.url()).await.unwrap().close().await;
    assert_eq!(columns().await, before);
}
