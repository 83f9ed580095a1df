//! What the shared SQL relies on in sqlx's SQLite driver, and what its errors become,
//! on an in-memory database (PostgreSQL is exercised by its backend's tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sqlx::Row;
use sqlx::sqlite::SqlitePoolOptions;
use tessera_store::StoreError;
use tessera_store_sql::store_error;

async fn pool() -> sqlx::SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap()
}

#[tokio::test]
async fn dollar_placeholders_bind_by_number_as_on_postgres() {
    let pool = pool().await;
    let row = sqlx::query("SELECT $2 AS second, $1 AS first, $2 AS again")
        .bind(1_i64)
        .bind(2_i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("first"), 1);
    assert_eq!(row.get::<i64, _>("second"), 2);
    assert_eq!(row.get::<i64, _>("again"), 2);
}

#[tokio::test]
async fn driver_errors_become_typed_store_errors() {
    let pool = pool().await;
    sqlx::query("CREATE TABLE t (name TEXT PRIMARY KEY, n INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES ('a', 1)")
        .execute(&pool)
        .await
        .unwrap();

    let taken = sqlx::query("INSERT INTO t VALUES ('a', 2)")
        .execute(&pool)
        .await
        .map_err(store_error);
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");

    let row = sqlx::query("SELECT name FROM t")
        .fetch_one(&pool)
        .await
        .unwrap();
    let garbled = row.try_get::<i64, _>("name").map_err(store_error);
    assert!(
        matches!(garbled, Err(StoreError::Corrupt(_))),
        "{garbled:?}"
    );

    let none = sqlx::query("SELECT name FROM t WHERE n = 9")
        .fetch_one(&pool)
        .await
        .map_err(store_error);
    assert!(matches!(none, Err(StoreError::NotFound(_))), "{none:?}");

    pool.close().await;
    let closed = sqlx::query("SELECT 1")
        .execute(&pool)
        .await
        .map_err(store_error);
    assert!(
        matches!(closed, Err(StoreError::Unavailable(_))),
        "{closed:?}"
    );
}
