//! Reads a page makes on every request, run on the calling thread through a
//! read-only rusqlite connection of that thread's own, rather than handed to one of
//! sqlx's connection threads and back. Measured on `/account` (a user's sessions and
//! their apps' last use), those hand-offs were 40 % of the page's CPU, in the
//! kernel; the reads themselves take microseconds (a few rows by an index, from the
//! page cache). In write-ahead-log mode a reader never waits for the writer; should
//! the file be busy all the same (a checkpoint restarting the log, a recovery), the
//! read is not waited for here but answered `None`, and the caller asks sqlx,
//! whose connections wait as configured.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::OpenFlags;
use tessera_store::StoreError;
use tessera_store_sql::{OwnedRow, Statement};

use crate::writer::{query_rows, store_error};

/// How many stores' connections a thread keeps (the server opens one store; tests
/// and `store migrate` a few).
const KEPT_PER_THREAD: usize = 4;

static NEXT_STORE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's read connections, by the store they read.
    static CONNECTIONS: RefCell<Vec<(u64, rusqlite::Connection)>> = const { RefCell::new(Vec::new()) };
}

/// The read connections of one store, one per thread that reads.
#[derive(Clone)]
pub(crate) struct Readers {
    store: u64,
    path: Arc<PathBuf>,
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            store: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            path: Arc::new(path.to_owned()),
        }
    }

    /// The rows of `statement`, read on this thread; `None` if the file is busy (the
    /// caller reads through sqlx instead).
    pub(crate) fn rows(&self, statement: Statement) -> Result<Option<Vec<OwnedRow>>, StoreError> {
        CONNECTIONS.with(|kept| {
            let mut kept = kept.borrow_mut();
            let at = match kept.iter().position(|(store, _)| *store == self.store) {
                Some(at) => at,
                None => {
                    if kept.len() >= KEPT_PER_THREAD {
                        kept.remove(0);
                    }
                    kept.push((self.store, self.open().map_err(store_error)?));
                    kept.len() - 1
                }
            };
            match query_rows(&kept[at].1, statement) {
                Ok(rows) => Ok(Some(rows)),
                Err(StoreError::Unavailable(_)) => Ok(None),
                Err(error) => Err(error),
            }
        })
    }

    fn open(&self) -> Result<rusqlite::Connection, rusqlite::Error> {
        let conn = rusqlite::Connection::open_with_flags(
            self.path.as_path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never wait on this thread: busy is answered at once (see above).
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }
}
