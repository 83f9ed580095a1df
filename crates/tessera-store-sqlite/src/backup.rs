//! `tessera store backup`: a consistent copy of the database while the server
//! runs, with SQLite's online backup.
//!
//! The copy is made in one step, inside one read transaction of the source: in
//! write-ahead-log mode a reader never blocks the writer, so the server goes on
//! answering, and the copy is the database as it was at one instant (never half
//! of a batch). Stepping through the pages instead would restart the copy at
//! every commit of the server, which under load may never finish.
//!
//! The copy is as private as the database (0600): it holds password hashes and,
//! without a master key, private signing keys. An existing file is never
//! overwritten.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

/// What a backup wrote.
#[derive(Debug, Clone, Copy)]
pub struct BackupSummary {
    pub pages: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no SQLite database at {}", .0.display())]
    NoDatabase(PathBuf),
    #[error("{} exists already; back up to a new file", .0.display())]
    Exists(PathBuf),
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the backup failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Copies the database at `source` into the new file `to`.
pub fn backup(source: &Path, to: &Path) -> Result<BackupSummary, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.to_owned()));
    }
    create_private(to)?;
    let copied = copy(source, to);
    if copied.is_err() {
        // Leave no partial copy that could be mistaken for a backup.
        let _ = std::fs::remove_file(to);
    }
    copied
}

fn copy(source: &Path, to: &Path) -> Result<BackupSummary, BackupError> {
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(Duration::from_secs(5))?;
    let mut into = Connection::open(to)?;
    {
        use rusqlite::backup::StepResult;
        let backup = Backup::new(&from, &mut into)?;
        // -1: every page in one step, one read transaction (see the module doc).
        // Busy or locked only while a checkpoint holds the file a moment: wait.
        let mut tries = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    return Err(BackupError::Sqlite(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the database stayed busy for 5 s".to_owned()),
                    )));
                }
            }
        }
    }
    // The copy is a plain database file, readable without a -wal beside it.
    into.pragma_update(None, "journal_mode", "DELETE")?;
    let pages: i64 = into.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let page_size: i64 = into.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    let pages = u64::try_from(pages).unwrap_or_default();
    Ok(BackupSummary {
        pages,
        bytes: pages.saturating_mul(u64::try_from(page_size).unwrap_or_default()),
    })
}

#[cfg(unix)]
fn create_private(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::Exists(path.to_owned())
            } else {
                BackupError::Create {
                    path: path.to_owned(),
                    source,
                }
            }
        })
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> Result<(), BackupError> {
    if path.exists() {
        return Err(BackupError::Exists(path.to_owned()));
    }
    Ok(())
}
