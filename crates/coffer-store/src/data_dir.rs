//! Permissions of the data directory: private to its owner whatever the umask.
//!
//! The directory and `db/` are created 0700 before sled opens, and at every open each
//! directory under them is set to 0700 and each file to 0600 (sled creates its files
//! under the process umask, and stores made before this held 0755/0644). Files sled
//! creates while running (snapshots, blobs) are not chmod-ed until the next open, but
//! they sit in directories nobody else can enter.

use std::io;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

/// Mode of every directory in a data directory.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file in a data directory.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700, or sets an existing one to 0700.
pub(crate) fn create_private(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder.create(dir)?;
    set_mode(dir, DIR_MODE)
}

/// Sets every directory under `dir` (itself included) to 0700 and every file to 0600.
/// Symbolic links are left alone: what they point to is not the store's to change.
pub(crate) fn restrict(dir: &Path) -> io::Result<()> {
    set_mode(dir, DIR_MODE)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            restrict(&entry.path())?;
        } else if kind.is_file() {
            set_mode(&entry.path(), FILE_MODE)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    let current = std::fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    if current == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
