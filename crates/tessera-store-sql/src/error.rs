//! sqlx's errors as typed [`StoreError`]s: the one place either SQL backend decides
//! what a driver error means.

use sqlx::error::DatabaseError;
use tessera_store::StoreError;

/// What a failed query means for the caller. sqlx's messages carry the database's
/// message, never a query's parameters.
pub fn store_error(error: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    let message = error.to_string();
    match &error {
        E::RowNotFound => StoreError::NotFound(message),
        E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed
        | E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::BeginFailed => StoreError::Unavailable(message),
        E::Database(db) if db.is_unique_violation() => StoreError::Conflict(message),
        E::Database(db) if transient(db.as_ref()) => StoreError::Unavailable(message),
        E::ColumnDecode { .. } | E::Decode(_) => StoreError::Corrupt(message),
        E::InvalidArgument(_) | E::Encode(_) => StoreError::Invalid(message),
        _ => StoreError::Other(message),
    }
}

/// Whether the database refused for now rather than for good: busy or locked past
/// the timeout, shutting down, out of connections or resources, a lost connection,
/// a statement or lock timeout, a serialization failure or deadlock.
fn transient(error: &dyn DatabaseError) -> bool {
    if let Some(error) = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // SQLSTATE classes: 08 connection exception, 53 insufficient resources,
        // 57 operator intervention (shutdown, statement timeout), 40 transaction
        // rollback (serialization failure, deadlock); 55P03 lock not available.
        let code = error.code();
        return ["08", "53", "57", "40"].iter().any(|c| code.starts_with(c)) || code == "55P03";
    }
    if let Some(error) = error.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        // The primary result code, in the low byte of the extended one: BUSY,
        // LOCKED, IOERR, CANTOPEN.
        let code = error
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .unwrap_or(0);
        return matches!(code & 0xff, 5 | 6 | 10 | 14);
    }
    false
}
