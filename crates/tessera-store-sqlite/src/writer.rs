//! The connection of the batch writer (`tessera_store_sql::Batches::sqlite`): its
//! own, opened with rusqlite beside sqlx's pool and used only on the writer's
//! thread, so that a batch's statements are direct calls into SQLite. Through sqlx
//! each was a hand-off to the connection's worker thread and back, a row at a
//! time; measured under load, those hand-offs (futex wakes and context switches)
//! were most of a batch's time and a third of the server's CPU. Both drivers link
//! the one SQLite library (`libsqlite3-sys`), so they share its locking of the file.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::types::ValueRef;
use tessera_store::StoreError;
use tessera_store_sql::{BatchConnection, OwnedRow, Statement, Value};

#[derive(Debug, thiserror::Error)]
pub(crate) enum WriterError {
    #[error(transparent)]
    Open(#[from] rusqlite::Error),
    #[error("cannot start the checkpointer's thread: {0}")]
    Thread(std::io::Error),
}

/// The writer's connection, and the checkpointer it wakes.
pub(crate) struct WriterConnection {
    conn: rusqlite::Connection,
    checkpoint: std::sync::mpsc::SyncSender<()>,
    /// Set by the checkpointer when it has nearly caught up with the log.
    finish_checkpoint: Arc<AtomicBool>,
}

/// How often at most the checkpointer starts again while batches commit.
const CHECKPOINT_PACE: Duration = Duration::from_millis(100);

/// How far behind the log the checkpointer leaves the rest to the writer.
const FEW_FRAMES: i64 = 64;

impl WriterConnection {
    /// Opens the database at `path` with the pool's settings: write-ahead log,
    /// `synchronous = FULL` (a committed batch survives a power cut), foreign keys,
    /// the same busy timeout.
    ///
    /// Except one: the writer does not checkpoint automatically. SQLite's automatic
    /// checkpoint runs in the connection whose commit grew the log past 1,000
    /// pages, copying them into the database and syncing it before that commit's
    /// caller hears back: every few dozen batches, one waited milliseconds for it,
    /// and every request queued behind it. A thread of its own, with its own
    /// connection, copies the log instead (passive checkpoints, which never block
    /// the writer), at most every 100 ms while batches commit, until only a few
    /// frames are left; the writer copies those few itself, between batches, so
    /// that the whole log is in the database and its next batch starts the log
    /// over. (Checkpoints by the checkpointer alone never catch up with a writer
    /// that goes on appending: under load the log grew past 300 MB.)
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Self, WriterError> {
        let open = || -> Result<rusqlite::Connection, rusqlite::Error> {
            let conn = rusqlite::Connection::open(path)?;
            conn.busy_timeout(busy_timeout)?;
            conn.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
            )?;
            Ok(conn)
        };
        let conn = open()?;
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        // A batch's statement differs by how many requests it carries: one kept
        // per size seen lately spares preparing it again.
        conn.set_prepared_statement_cache_capacity(64);
        let checkpointer = open()?;
        let (checkpoint, due) = std::sync::mpsc::sync_channel::<()>(1);
        let finish_checkpoint = Arc::new(AtomicBool::new(false));
        let finish = finish_checkpoint.clone();
        std::thread::Builder::new()
            .name("tessera-store-checkpointer".into())
            .spawn(move || {
                // Ends with the writer (its sender dropped).
                while due.recv().is_ok() {
                    loop {
                        match checkpoint_passively(&checkpointer) {
                            Ok(behind) if behind > FEW_FRAMES => continue,
                            Ok(_) => finish.store(true, Ordering::Release),
                            // The next commit asks again; the log grows meanwhile.
                            Err(error) => {
                                tracing::warn!(%error, "checkpointing the SQLite log failed");
                            }
                        }
                        break;
                    }
                    std::thread::sleep(CHECKPOINT_PACE);
                }
            })
            .map_err(WriterError::Thread)?;
        Ok(Self {
            conn,
            checkpoint,
            finish_checkpoint,
        })
    }
}

/// A passive checkpoint on `conn`: how many frames of the log it left uncopied.
fn checkpoint_passively(conn: &rusqlite::Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(row.get::<_, i64>(1)? - row.get::<_, i64>(2)?)
    })
}

impl BatchConnection for WriterConnection {
    type Row = OwnedRow;

    async fn rows(&mut self, statement: Statement) -> Result<Vec<OwnedRow>, StoreError> {
        query_rows(&self.conn, statement)
    }

    fn committed(&mut self) {
        if self.finish_checkpoint.swap(false, Ordering::AcqRel)
            && let Err(error) = checkpoint_passively(&self.conn)
        {
            tracing::warn!(%error, "checkpointing the SQLite log failed");
        }
        // Full: a checkpoint is due already, which will see this commit too.
        let _ = self.checkpoint.try_send(());
    }
}

/// The rows of `statement` on `conn`, as the batch code reads rows (the writer's,
/// and the readers' of `reader`).
pub(crate) fn query_rows(
    conn: &rusqlite::Connection,
    statement: Statement,
) -> Result<Vec<OwnedRow>, StoreError> {
    let mut prepared = conn.prepare_cached(&statement.text).map_err(store_error)?;
    let names: Arc<[String]> = prepared
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let values = statement.values.into_iter().map(|value| match value {
        Value::Text(text) => rusqlite::types::Value::Text(text),
        Value::Int(int) => rusqlite::types::Value::Integer(int),
        Value::Bytes(bytes) => rusqlite::types::Value::Blob(bytes),
        Value::Null => rusqlite::types::Value::Null,
    });
    let mut rows = prepared
        .query(rusqlite::params_from_iter(values))
        .map_err(store_error)?;
    let mut read = Vec::new();
    while let Some(row) = rows.next().map_err(store_error)? {
        let values = (0..names.len())
            .map(|at| {
                Ok(match row.get_ref(at)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(int) => Value::Int(int),
                    // Not lossy: text that is not UTF-8 is corrupt, as sqlx says.
                    ValueRef::Text(text) => Value::Text(
                        std::str::from_utf8(text)
                            .map_err(|e| rusqlite::Error::Utf8Error(at, e))?
                            .to_owned(),
                    ),
                    ValueRef::Blob(bytes) => Value::Bytes(bytes.to_vec()),
                    ValueRef::Real(_) => {
                        return Err(rusqlite::Error::InvalidColumnType(
                            at,
                            names[at].clone(),
                            rusqlite::types::Type::Real,
                        ));
                    }
                })
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()
            .map_err(store_error)?;
        read.push(OwnedRow {
            names: names.clone(),
            values,
        });
    }
    Ok(read)
}

/// What a failed statement means for the caller, as `tessera_store_sql::store_error`
/// says it for sqlx's: busy, locked, I/O and cannot-open are for now; a unique
/// violation is a conflict; a value of the wrong type or text that is not UTF-8 is
/// corrupt.
pub(crate) fn store_error(error: rusqlite::Error) -> StoreError {
    let message = error.to_string();
    if matches!(
        error,
        rusqlite::Error::Utf8Error(..) | rusqlite::Error::InvalidColumnType(..)
    ) {
        return StoreError::Corrupt(message);
    }
    match error.sqlite_error_code() {
        Some(
            rusqlite::ErrorCode::DatabaseBusy
            | rusqlite::ErrorCode::DatabaseLocked
            | rusqlite::ErrorCode::SystemIoFailure
            | rusqlite::ErrorCode::CannotOpen,
        ) => StoreError::Unavailable(message),
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(message),
        _ => StoreError::Other(message),
    }
}
