#![allow(clippy::unwrap_used, clippy::expect_used)]

use tessera_store_sqlite::{DATABASE_FILE, MigrationError, OpenError, SCHEMA_VERSION, SqliteStore};

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join(DATABASE_FILE))
        .await
        .unwrap();
    tessera_store::conformance::run(&store).await;
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
