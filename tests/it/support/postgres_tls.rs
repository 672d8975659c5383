// The PostgreSQL server with TLS of tests/it/postgres_tls.rs, and CAs of the tests' own.
//
// Once per test binary, the first test that asks starts a throw-away cluster with
// `scripts/postgres.sh start-tls DIR PID` (DIR in the temp directory, PID this process): it
// takes TLS connections only (pg_hba.conf `hostssl`), with a certificate for localhost and
// 127.0.0.1 signed by a CA of its own, DIR/ca.pem. As for the plain server
// (support/postgres.rs), the script's watcher stops the cluster and removes DIR once this
// process has exited, and a cluster that cannot be started fails every test that needs it
// with the script's message: nothing is skipped.

use std::path::{Path, PathBuf};

/// The TLS cluster: where its files are, and the URL of its `hookflow` database.
pub struct TlsServer {
    /// The cluster's directory: its CA is `ca.pem` in it.
    pub dir: PathBuf,
    /// `postgres://USER@127.0.0.1:PORT/hookflow?sslmode=verify-full&sslrootcert=DIR/ca.pem`.
    pub url: String,
}

impl TlsServer {
    /// The CA that signed the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        let port = std::fs::read_to_string(self.dir.join("port")).expect("the cluster's port");
        port.trim().parse().expect("a port number")
    }

    /// The user the URL connects as.
    pub fn user(&self) -> &str {
        let rest = self.url.trim_start_matches("postgres://");
        &rest[..rest.find('@').expect("a user in the URL")]
    }
}

/// The TLS cluster, started on first use.
pub fn pg_tls_server() -> &'static TlsServer {
    static SERVER: std::sync::OnceLock<Result<TlsServer, String>> = std::sync::OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh")
}

/// Runs `scripts/postgres.sh ARGS...`: its stdout, or what went wrong.
fn run(args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let output = std::process::Command::new("bash")
        .arg(script())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run scripts/postgres.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        return Err(format!(
            "`scripts/postgres.sh {args:?}` failed ({}): {}{stdout}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    Ok(stdout)
}

fn start() -> Result<TlsServer, String> {
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("hookflow-postgres-tls-{pid}"));
    let url = run(&[
        "start-tls".as_ref(),
        dir.as_os_str(),
        pid.to_string().as_ref(),
    ])?;
    if !url.starts_with("postgres://") {
        return Err(format!("scripts/postgres.sh start-tls printed {url:?}"));
    }
    Ok(TlsServer { dir, url })
}

/// A new self-signed CA, not the cluster's (made by `scripts/postgres.sh ca`), named after
/// the test `name`: its PEM file. It has the same subject name as the cluster's CA.
pub fn other_ca(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookflow-ca-{}-{name}", std::process::id()));
    match run(&["ca".as_ref(), dir.as_os_str()]) {
        Ok(path) => PathBuf::from(path),
        Err(message) => panic!("{message}"),
    }
}

/// Whether `sql` runs without error on the database at `url` (with psql).
pub fn psql_succeeds(url: &str, sql: &str) -> bool {
    run(&["psql".as_ref(), url.as_ref(), sql.as_ref()]).is_ok()
}
