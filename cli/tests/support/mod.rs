//! What the CLI's test crates share: a one-step workflow to fill stores with, a fresh temporary
//! directory, and a way to run the `hookflow` binary.

#![allow(dead_code)] // each test crate uses its own part

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

#[step]
pub async fn weigh(_ctx: &StepContext, parcel: String) -> Result<u32, Never> {
    Ok(u32::try_from(parcel.len()).unwrap_or(0))
}

#[workflow]
pub async fn parcel(ctx: &WorkflowContext, parcel: String) -> Result<u32, Never> {
    weigh(ctx, parcel).await
}

/// An empty directory of its own for test `name` of crate `suite`.
pub fn tempdir(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hookflow-cli-{suite}-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the `hookflow` binary on `db`: (exit code, stdout, stderr).
pub fn hookflow(db: impl AsRef<OsStr>, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookflow"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
