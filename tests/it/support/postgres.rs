// The PostgreSQL server the tests use (the module `support::postgres` of tests/it, used by
// its modules durable, leases, postgres_store and workers; cli/tests/cli.rs includes this
// file with `include!`), and clusters of a test's own that it may halt and restart.
//
// Once per test binary, the first test that asks starts a throw-away cluster with
// `scripts/postgres.sh start DIR PID` (DIR in the temp directory, PID this process): the
// script leaves a detached watcher that stops the cluster and removes DIR once this process
// has exited, however it ends (statics are never dropped in Rust, and a panic or a kill
// would skip any other cleanup). `HOOKFLOW_TEST_DATABASE_URL`, if set and not empty, names
// a server to use instead (nothing is started or stopped then). Each test gets a database of
// its own. If the server cannot be started, every test that needs it fails with the script's
// message: nothing is skipped.

/// The URL of the server's `hookflow` database.
#[allow(dead_code)]
pub fn pg_server() -> &'static str {
    static SERVER: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    match SERVER.get_or_init(pg_start) {
        Ok(url) => url,
        Err(message) => panic!("{message}"),
    }
}

#[allow(dead_code)]
fn pg_script() -> std::path::PathBuf {
    // The root package's tests, or a workspace member's (cli/): the script is at the root.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        dir.join("scripts/postgres.sh"),
        dir.join("../scripts/postgres.sh"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| dir.join("scripts/postgres.sh"))
}

#[allow(dead_code)]
fn pg_start() -> Result<String, String> {
    if let Ok(url) = std::env::var("HOOKFLOW_TEST_DATABASE_URL") {
        if !url.trim().is_empty() {
            return Ok(url.trim().to_owned());
        }
    }
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("hookflow-postgres-{pid}"));
    let output = std::process::Command::new("bash")
        .arg(pg_script())
        .arg("start")
        .arg(&dir)
        .arg(pid.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run scripts/postgres.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !stdout.starts_with("postgres://") {
        return Err(format!(
            "the PostgreSQL tests need a server, and `scripts/postgres.sh start {}` failed \
             ({}): {}{stdout}\n(set HOOKFLOW_TEST_DATABASE_URL to use an existing server)",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    Ok(stdout)
}

/// Runs each SQL command on the database at `url`, with psql; panics if one fails.
#[allow(dead_code)]
pub fn pg_psql(url: &str, commands: &[&str]) {
    let output = std::process::Command::new("bash")
        .arg(pg_script())
        .arg("psql")
        .arg(url)
        .args(commands)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run scripts/postgres.sh psql");
    assert!(
        output.status.success(),
        "psql {commands:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `url` with its database replaced by `database`.
#[allow(dead_code)]
pub fn pg_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{database}{query}", &base[..path_start])
}

/// A new, empty database for the test `name`: its URL.
#[allow(dead_code)]
pub fn pg_database(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    let database = format!("hookflow_{}_{n}_{name}", std::process::id());
    let server = pg_server();
    pg_psql(
        server,
        &[
            &format!("DROP DATABASE IF EXISTS {database}"),
            &format!("CREATE DATABASE {database}"),
        ],
    );
    pg_with_database(server, &database)
}

/// A PostgreSQL cluster of one test's own, on a free port: unlike [`pg_server`]'s, which the
/// other tests share, it may be halted and started again (a database outage). The script's
/// watcher removes it once this process has exited; dropping it removes it at once.
#[allow(dead_code)]
pub struct PgCluster {
    dir: std::path::PathBuf,
    url: String,
}

#[allow(dead_code)]
impl PgCluster {
    /// Starts a new cluster for the test `name`; panics with the script's message if it
    /// cannot.
    pub fn start(name: &str) -> Self {
        Self::start_with(name, None)
    }

    /// As [`PgCluster::start`], with the server's `-c` settings `settings`
    /// (`HOOKFLOW_PG_SETTINGS` of scripts/postgres.sh) when given.
    pub fn start_with(name: &str, settings: Option<&str>) -> Self {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("hookflow-postgres-{pid}-{name}"));
        let url = pg_script_run_with(
            &["start".as_ref(), dir.as_os_str(), pid.to_string().as_ref()],
            settings,
        );
        assert!(
            url.starts_with("postgres://"),
            "scripts/postgres.sh start printed {url:?}"
        );
        PgCluster { dir, url }
    }

    /// The URL of its `hookflow` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server (`pg_ctl stop -m fast` or `-m immediate`), keeping its data and port.
    pub fn halt(&self, mode: &str) {
        pg_script_run(&["halt".as_ref(), self.dir.as_os_str(), mode.as_ref()]);
    }

    /// Starts the halted server again, on the same port with the same data.
    pub fn restart(&self) {
        pg_script_run(&["restart".as_ref(), self.dir.as_os_str()]);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(pg_script())
            .arg("stop")
            .arg(&self.dir)
            .stdin(std::process::Stdio::null())
            .output();
    }
}

/// Runs `scripts/postgres.sh ARGS...`; its stdout, or a panic with its stderr.
#[allow(dead_code)]
fn pg_script_run(args: &[&std::ffi::OsStr]) -> String {
    pg_script_run_with(args, None)
}

/// As [`pg_script_run`], with `HOOKFLOW_PG_SETTINGS` set to `settings` when given.
#[allow(dead_code)]
fn pg_script_run_with(args: &[&std::ffi::OsStr], settings: Option<&str>) -> String {
    let mut command = std::process::Command::new("bash");
    if let Some(settings) = settings {
        command.env("HOOKFLOW_PG_SETTINGS", settings);
    }
    let output = command
        .arg(pg_script())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run scripts/postgres.sh");
    assert!(
        output.status.success(),
        "scripts/postgres.sh {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
