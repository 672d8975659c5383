//! Directories of the tests' own.

use std::path::PathBuf;

/// An empty directory `hookflow-{kind}-{pid}-{name}` in the temporary directory: removed
/// first if an earlier run of this process id left it.
pub fn fresh(kind: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookflow-{kind}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
