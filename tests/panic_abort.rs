//! A run whose store fails stops without unwinding: `tests/panic_abort_app`, an application
//! built with `panic = "abort"` (the workspace's `panic-abort` profile), must see its run end
//! `Interrupted` and live on to resume it. Were the run stopped by unwinding, as it once was,
//! the process would abort (SIGABRT) at the failed commit.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn a_store_outage_interrupts_the_run_and_an_abort_on_panic_process_lives() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("panic-abort");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Its own target directory: the profile's artifacts differ anyway, and the build does not
    // wait for the lock of the one running this test.
    let build = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "hookflow-panic-abort-app",
            "--profile",
            "panic-abort",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo runs");
    assert!(build.success(), "building the panic-abort app failed");

    let output = Command::new(target.join("panic-abort/hookflow-panic-abort-app"))
        .output()
        .expect("the app starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the app died ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "status: interrupted",
            // The first step committed, the second ran and could not commit, the third
            // never started.
            "steps run: 2",
            "error: store unavailable: commit: the database is down",
            // Resumed once the store is back: the first step replays, the second runs again,
            // then the third.
            "resumed: completed",
            "steps run: 4",
        ],
        "{stderr}"
    );
}
