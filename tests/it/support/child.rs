//! Child processes: this test binary run again on one of its ignored tests (an entry point
//! that only the test that starts it runs), killed when the test is done with it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A child process, SIGKILLed and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this binary on its ignored test `test` (`module::name`) with the variables `env`,
/// and reads its output until `said` finds what it waits for in a line (libtest prints the
/// test's name first on the line the child's first `println!` is on, so look for a marker
/// anywhere in it). The rest of the child's output is drained by a thread, so that the child
/// never blocks on a full pipe.
pub fn start<T>(
    test: &str,
    env: &[(&str, &OsStr)],
    mut said: impl FnMut(&str) -> Option<T>,
) -> (Killed, T) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let found = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the child process `{test}` ended before it said so"))
            .unwrap();
        if let Some(found) = said(&line) {
            break found;
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (Killed(child), found)
}
