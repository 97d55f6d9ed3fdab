//! File helpers.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A sibling temporary path for `path` (same directory, so `rename` is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// flushed to disk, then renamed over `path`, and the rename flushed too. A crash never
/// leaves a partial file.
///
/// # Errors
/// Any I/O error; the temporary file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path)
}

/// Flushes every file directly inside `folder`, and the folder itself, to disk: before
/// a folder written by other code (Burn's recorders) is renamed into place.
///
/// # Errors
/// Any I/O error.
pub fn sync_folder(folder: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            // Opened for writing (nothing is written): Windows flushes only such handles.
            std::fs::OpenOptions::new().write(true).open(entry.path())?.sync_all()?;
        }
    }
    sync_directory(folder)
}

/// Flushes the directory holding `path` (a rename into it, say) to disk.
///
/// # Errors
/// Any I/O error.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_directory(parent),
        _ => sync_directory(Path::new(".")),
    }
}

/// `fsync` on a directory, where the platform and file system support it: Windows
/// cannot open a directory as a file, and some file systems (network and FUSE mounts)
/// refuse to flush one; their renames are as durable as they make them, and the write
/// that already succeeded is not failed for it.
fn sync_directory(dir: &Path) -> std::io::Result<()> {
    use std::io::ErrorKind::{InvalidInput, PermissionDenied, Unsupported};
    if cfg!(windows) {
        return Ok(());
    }
    match std::fs::File::open(dir).and_then(|handle| handle.sync_all()) {
        Err(e) if matches!(e.kind(), InvalidInput | Unsupported | PermissionDenied) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary() {
        let dir = std::env::temp_dir().join(format!("shufflenas-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        sync_folder(&dir).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["state.json"]);
        // A missing folder is an error, not a silent success.
        assert!(write_atomic(&dir.join("missing").join("x"), b"y").is_err());
        assert!(sync_folder(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
