#![allow(clippy::unwrap_used, clippy::expect_used)]

use tessera_store_sqlite::{DATABASE_FILE, MigrationError, OpenError, SCHEMA_VERSION, SqliteStore};

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join(DATABASE_FILE))
        .await
        .unwrap();
    tessera_store::conformance::run(&store).await;
    tessera_store::conformance::presence(&store).await;
}

#[tokio::test]
async fn reopening_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    let first = SqliteStore::open(&path).await.unwrap();
    first.close().await;
    // a second open finds the schema current and migrates nothing
    SqliteStore::open(&path).await.unwrap();
}

#[tokio::test]
async fn a_newer_schema_is_used_while_it_only_added_and_refused_once_it_took_away() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    let run = |sql: String| {
        let path = path.clone();
        async move {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
        }
    };
    // The next release migrated, adding only: this version runs on it.
    run(format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1)).await;
    SqliteStore::open(&path).await.unwrap().close().await;
    // A later one took something away and said so.
    run(format!(
        "UPDATE schema_compatibility SET oldest_compatible = {}",
        SCHEMA_VERSION + 1
    ))
    .await;
    let err = SqliteStore::open(&path).await.err().unwrap();
    assert!(matches!(
        err,
        OpenError::Migration(MigrationError::NewerSchema { .. })
    ));
    assert!(
        err.to_string().contains("newer than this tessera knows"),
        "{err}"
    );
}

#[tokio::test]
async fn the_revocation_log_migration_keeps_entries_and_the_sequence_high_water_mark() {
    use sqlx::Connection;
    use tessera_store::{EndReason, RevocationLog, Revoked};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    for script in [
        include_str!("../migrations/0001_accounts_and_sessions.sql"),
        include_str!("../migrations/0002_clients_and_keys.sql"),
        include_str!("../migrations/0003_refresh_families.sql"),
    ] {
        sqlx::raw_sql(script).execute(&mut c).await.unwrap();
    }
    let session = tessera_core::SessionSecret::generate().session_id();
    let user = tessera_core::UserId::generate();
    for _ in 0..3 {
        sqlx::query(
            "INSERT INTO revocations (session_id, user_id, reason, at, expires_at) \
             VALUES (?, ?, 'logout', 5, 4000000000000)",
        )
        .bind(session.as_str().to_owned())
        .bind(user.to_string())
        .execute(&mut c)
        .await
        .unwrap();
    }
    // The newest entry was purged: the counter, not max(sequence), is the position.
    sqlx::query("DELETE FROM revocations WHERE sequence = 3")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::raw_sql("PRAGMA user_version = 3")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();

    let store = SqliteStore::open(&path).await.unwrap();
    let entries = store.revocations_after(0, 10).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(entries[0].revoked, Revoked::Session(session));
    assert_eq!(entries[0].user, Some(user));
    assert_eq!(entries[0].reason, EndReason::Logout);
    assert_eq!(store.latest_revocation().await.unwrap(), 3);
    let next = store
        .append_revocation(
            Revoked::Token("j".into()),
            None,
            EndReason::Revoked,
            tessera_core::Timestamp::now(),
            tessera_core::Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(next, 4);
}

/// Accounts from before skeletons were kept get theirs at the first open, oldest
/// first: of existing look-alikes nothing is lost, the oldest holds the look, the
/// others are recorded as its look-alikes, and no further one can register.
#[tokio::test]
async fn existing_look_alikes_are_kept_and_the_oldest_holds_the_look() {
    use sqlx::Connection;
    use tessera_core::{Roles, Timestamp, UserId, Username};
    use tessera_store::{AccountStore, CreateUserError, NewUser};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for script in [
        include_str!("../migrations/0001_accounts_and_sessions.sql"),
        include_str!("../migrations/0002_clients_and_keys.sql"),
        include_str!("../migrations/0003_refresh_families.sql"),
        include_str!("../migrations/0004_revocation_log.sql"),
        include_str!("../migrations/0005_opaque_tokens.sql"),
        include_str!("../migrations/0006_presence.sql"),
    ] {
        sqlx::raw_sql(script).execute(&mut c).await.unwrap();
    }
    // Cyrillic а first, then the Latin name, then a dotless ı; and one unrelated.
    let accounts = [
        ("admin", 2_000),
        ("\u{430}dmin", 1_000),
        ("adm\u{131}n", 3_000),
        ("bob", 1_500),
    ];
    let mut ids = Vec::new();
    for (name, created_at) in accounts {
        let id = UserId::generate();
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(format!("$argon2id$fake${name}"))
        .bind(created_at)
        .execute(&mut c)
        .await
        .unwrap();
        ids.push(id);
    }
    sqlx::raw_sql("PRAGMA user_version = 6")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();

    let columns = || async {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT username, username_skeleton, look_alike_of FROM users ORDER BY created_at",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
        rows
    };
    let store = SqliteStore::open(&path).await.unwrap();
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
            ("\u{430}dmin".to_owned(), Some(skeleton.clone()), None),
            ("bob".to_owned(), Some("bob".to_owned()), None),
            ("admin".to_owned(), None, Some(oldest.clone())),
            ("adm\u{131}n".to_owned(), None, Some(oldest.clone())),
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

    // Done once: a second open changes nothing.
    let before = columns().await;
    SqliteStore::open(&path).await.unwrap().close().await;
    assert_eq!(columns().await, before);
}

/// The batch writer does not checkpoint (it would wait for it): its own thread does,
/// so what the writer commits reaches the database file itself, with no other
/// connection writing, and the log does not grow without end.
#[tokio::test]
async fn the_writers_commits_are_checkpointed_into_the_database_file() {
    use std::time::Duration;
    use tessera_core::{AuthorizationCodeSecret, ClientId, Scopes, SessionId, Timestamp, UserId};
    use tessera_store::{AuthorizationCode, AuthorizationCodeStore};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    let store = SqliteStore::open(&path).await.unwrap();
    let now = Timestamp::now();
    for _ in 0..40 {
        store
            .store_code(AuthorizationCode {
                hash: AuthorizationCodeSecret::generate().hash(),
                client_id: ClientId::generate(),
                user: UserId::generate(),
                session: SessionId::time_ordered(),
                redirect_uri: "https://rp.example/cb".into(),
                scopes: Scopes::parse("openid").unwrap(),
                code_challenge: None,
                nonce: None,
                dpop_jkt: None,
                auth_time: now,
                family: SessionId::time_ordered(),
                jti: "checkpointed".into(),
                issued_at: now,
                expires_at: now.saturating_add(Duration::from_secs(60)),
                forget_at: now.saturating_add(Duration::from_secs(600)),
            })
            .await
            .unwrap();
    }
    // The database file alone, without its log: what a checkpoint has copied.
    let copy = dir.path().join("copy.sqlite3");
    let mut in_file = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::copy(&path, &copy).unwrap();
        in_file = rusqlite::Connection::open(&copy)
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM authorization_codes", [], |row| {
                    row.get::<_, i64>(0)
                })
            })
            .unwrap_or(0);
        if in_file == 40 {
            break;
        }
    }
    assert_eq!(in_file, 40, "codes in the database file without its log");
}
