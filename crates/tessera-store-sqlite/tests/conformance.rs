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
async fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    let conn = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg(format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1))
        .status();
    if !conn.map(|s| s.success()).unwrap_or(false) {
        // no sqlite3 CLI: set the version through a raw connection instead
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {}",
            SCHEMA_VERSION + 1
        )))
        .execute(&mut c)
        .await
        .unwrap();
    }
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
