//! CPU time spent by processes, read from Linux's `/proc`: what a run costs the worker
//! processes and the PostgreSQL server, so that the runs/s measured can be set against what
//! the machine's cores allow at that cost.

use std::collections::HashMap;

/// The CPU time one run cost, in µs.
pub struct PerRun {
    pub workers_us: f64,
    pub server_us: f64,
}

impl PerRun {
    /// The most runs/s this machine's cores allow at this cost (everything on one machine).
    pub fn ceiling(&self) -> f64 {
        let total = self.workers_us + self.server_us;
        if total > 0.0 {
            cores() as f64 * 1e6 / total
        } else {
            f64::NAN
        }
    }
}

/// The machine's cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Clock ticks per second of `/proc`'s times (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `pid`'s parent and its user + system CPU seconds so far; `None` once it is gone.
fn stat(pid: u32, ticks: f64) -> Option<(u32, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields after it, from the
    // third (the state) on.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((ppid, (utime + stime) / ticks))
}

/// `pid`'s user + system CPU seconds so far (`None` once it is gone).
pub fn seconds(pid: u32) -> Option<f64> {
    stat(pid, ticks_per_second()).map(|(_, seconds)| seconds)
}

/// The PostgreSQL server's main process (the parent of this connection's backend), if it
/// runs on this machine.
pub async fn server_pid(client: &tokio_postgres::Client) -> Option<u32> {
    let backend: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .ok()?
        .get(0);
    let (parent, _) = stat(u32::try_from(backend).ok()?, ticks_per_second())?;
    stat(parent, ticks_per_second()).map(|_| parent)
}

/// The CPU seconds of the server's main process and of each of its children (its backends,
/// the WAL writer, the checkpointer...), by process id.
pub fn server(postmaster: u32) -> HashMap<u32, f64> {
    let ticks = ticks_per_second();
    let mut spent = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return spent;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some((ppid, seconds)) = stat(pid, ticks)
            && (pid == postmaster || ppid == postmaster)
        {
            spent.insert(pid, seconds);
        }
    }
    spent
}

/// The CPU seconds the server's processes spent between two readings of [`server`]: a
/// process started since counts from zero (one that ended since is not counted).
pub fn spent_since(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, seconds)| seconds - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}
