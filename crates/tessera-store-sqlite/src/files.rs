//! The store's place on disk, kept to the service's own user: the database holds
//! password hashes and, without a master key, private signing keys.
//!
//! A folder the store creates is 0700. One that exists already is left as it is:
//! it may be a mount point, or shared on purpose (a backup agent's group), and
//! tessera does not own it; a warning names it at every open if other users may
//! enter it. The database and its `-wal` and `-shm` files are 0600 whatever the
//! umask: the database is created so before SQLite opens it (SQLite gives the
//! `-wal` and `-shm` files it creates the database's mode), and existing ones with
//! a wider mode are narrowed at every open.

use std::io;
use std::path::{Path, PathBuf};

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates the folder that will hold the database at `path` if missing, and the
/// database file itself, both private; narrows the mode of existing database files.
pub(crate) fn prepare(path: &Path) -> Result<(), FileError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|source| FileError::Dir {
            path: dir.to_owned(),
            source,
        })?;
    }
    create_private_file(path).map_err(|source| FileError::File {
        path: path.to_owned(),
        source,
    })?;
    for file in [
        path.to_owned(),
        suffixed(path, "-wal"),
        suffixed(path, "-shm"),
    ] {
        narrow(&file);
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot create the folder {} of the store: {source}", path.display())]
    Dir { path: PathBuf, source: io::Error },
    #[error("cannot create the store file {}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
        // The umask may have narrowed it further than anyone meant.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
        return Ok(());
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = %format!("{mode:o}"),
            "the folder of the store lets other users in (the store's files are 0600 \
             all the same); unless it is shared on purpose, chmod 700 it"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => narrow_to_private(path),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(not(unix))]
fn create_private_file(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn narrow_to_private(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
}

/// Narrows an existing file to 0600. A failure (another user owns it) is logged,
/// not fatal: the store still works, and the warning says what to fix.
#[cfg(unix)]
fn narrow(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode == FILE_MODE {
        return;
    }
    match narrow_to_private(path) {
        Ok(()) => tracing::info!(
            file = %path.display(),
            was = %format!("{mode:o}"),
            "made a store file readable by this user only (0600)"
        ),
        Err(error) => tracing::warn!(
            file = %path.display(),
            mode = %format!("{mode:o}"),
            %error,
            "cannot make a store file readable by this user only; chmod 600 it"
        ),
    }
}

#[cfg(not(unix))]
fn narrow(_path: &Path) {}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_and_files_are_private_and_old_files_are_narrowed() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/store.sqlite3");
        prepare(&path).unwrap();
        assert_eq!(mode(&root.path().join("a/b")), 0o700);
        assert_eq!(mode(&path), 0o600);

        let wal = suffixed(&path, "-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        prepare(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }

    #[test]
    fn an_existing_folder_is_left_as_it_is() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&root.path().join("store.sqlite3")).unwrap();
        assert_eq!(mode(root.path()), 0o755);
    }
}
