//! A load driver for the axum example: starts `axum_checkout` (the binary built beside this
//! one) on a free port, sends it checkouts over keep-alive connections, and prints the
//! server's resident memory (`VmRSS` from `/proc`, Linux) as it goes, with the request rate.
//!
//! ```sh
//! cargo build --release --example axum_checkout --example axum_load
//! target/release/examples/axum_load --requests 50000 --connections 16
//! ```
//!
//! The mix, by request number: 1 in 100 a checkout with a new `Idempotency-Key`, sent twice
//! (the second answer is the replayed outcome); 1 in 5 a declined payment (402, compensated);
//! 1 in 50 a `GET` (405) and 1 in 50 a body that is not JSON (400); the others a guest
//! checkout of `cart_ok` (200). Every answer's status is checked against the mix.
//!
//! Options: `--requests N` (50,000), `--connections N` (16), `--server PATH` (the
//! `axum_checkout` binary; by default the one beside this program), `--max-rss-mb N` (exit
//! with an error if the server ends above it; 100).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Options {
    requests: usize,
    connections: usize,
    server: std::path::PathBuf,
    max_rss_mb: f64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        requests: 50_000,
        connections: 16,
        server: std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("axum_checkout"),
        max_rss_mb: 100.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--requests" => options.requests = value()?.parse().map_err(|e| format!("{e}"))?,
            "--connections" => {
                options.connections = value()?.parse().map_err(|e| format!("{e}"))?;
            }
            "--server" => options.server = value()?.into(),
            "--max-rss-mb" => options.max_rss_mb = value()?.parse().map_err(|e| format!("{e}"))?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

/// `VmRSS` and `VmHWM` (the peak) of process `pid`, in MB (10^6 bytes).
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(f64::NAN, |kb| kb * 1024.0 / 1e6)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What request `n` of the mix is: method, path, headers, body and the status expected. Those
/// with an idempotency key (`n % 100 == 0`) are sent twice.
fn request(
    n: usize,
) -> (
    &'static str,
    &'static str,
    Vec<(String, String)>,
    &'static str,
    u16,
) {
    let ok = "/carts/cart_ok/complete";
    match n {
        n if n % 100 == 0 => (
            "POST",
            ok,
            vec![("Idempotency-Key".into(), format!("load-{n}"))],
            "",
            200,
        ),
        n if n % 5 == 1 => ("POST", "/carts/cart_declined/complete", Vec::new(), "", 402),
        n if n % 50 == 2 => ("GET", ok, Vec::new(), "", 405),
        n if n % 50 == 3 => (
            "POST",
            ok,
            vec![("content-type".into(), "application/json".into())],
            "{\"additional_data\": ",
            400,
        ),
        _ => ("POST", ok, Vec::new(), "", 200),
    }
}

/// A keep-alive HTTP/1.1 connection.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    /// Sends a request and reads its answer: the status and the headers (lower-case names).
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> std::io::Result<(u16, Vec<(String, String)>)> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: load\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        self.stream.write_all(request.as_bytes()).await?;
        // The head, then as many body bytes as it announces.
        let head_end = loop {
            if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.get(9..12))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while self.buffer.len() < head_end + 4 + length {
            self.fill().await?;
        }
        self.buffer.drain(..head_end + 4 + length);
        Ok((status, headers))
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let options = options().unwrap_or_else(|err| {
        eprintln!("axum_load: {err}");
        std::process::exit(2);
    });
    if !options.server.exists() {
        eprintln!(
            "axum_load: no server at {} (build it: cargo build --release --example axum_checkout)",
            options.server.display()
        );
        std::process::exit(2);
    }
    let mut server = Command::new(&options.server)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let pid = server.id();
    let url = std::io::BufReader::new(server.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("checkout service listening on http://")
                .map(str::to_owned)
        })
        .expect("the server's address");
    let addr: std::net::SocketAddr = url.parse().expect("an address");
    let (rss_start, _) = memory(pid);
    println!(
        "server {} (pid {pid}) on {addr}: {rss_start:.1} MB resident before any request",
        options.server.display()
    );
    println!("{:>9} {:>9} {:>10}", "requests", "RSS (MB)", "requests/s");

    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(std::sync::Mutex::new(BTreeMap::<(u16, u16), usize>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.connections {
        let (next, done, statuses) = (next.clone(), done.clone(), statuses.clone());
        let requests = options.requests;
        tasks.spawn(async move {
            let mut connection = Connection {
                stream: TcpStream::connect(addr).await.expect("connect"),
                buffer: Vec::new(),
            };
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    return;
                }
                let (method, path, headers, body, expected) = request(n);
                let (status, _) = connection
                    .send(method, path, &headers, body)
                    .await
                    .expect("an answer");
                *statuses
                    .lock()
                    .unwrap()
                    .entry((expected, status))
                    .or_default() += 1;
                if n % 100 == 0 {
                    let (status, headers) = connection
                        .send(method, path, &headers, body)
                        .await
                        .expect("an answer");
                    let replayed = headers
                        .iter()
                        .any(|(n, v)| n == "idempotent-replayed" && v == "true");
                    let seen = if replayed { status } else { 0 };
                    *statuses
                        .lock()
                        .unwrap()
                        .entry((expected, seen))
                        .or_default() += 1;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let start = Instant::now();
    let (mut last_done, mut last_at) = (0, start);
    let step = (options.requests / 10).max(1);
    let mut mark = step;
    while !tasks.is_empty() {
        tokio::select! {
            finished = tasks.join_next() => {
                if let Some(Err(err)) = finished {
                    eprintln!("axum_load: a connection failed: {err}");
                    let _ = server.kill();
                    std::process::exit(1);
                }
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        let now_done = done.load(Ordering::Relaxed);
        if now_done >= mark || (tasks.is_empty() && now_done > last_done) {
            let (rss, _) = memory(pid);
            let rate = (now_done - last_done) as f64 / last_at.elapsed().as_secs_f64();
            println!("{now_done:>9} {rss:>9.1} {rate:>10.0}");
            (last_done, last_at) = (now_done, Instant::now());
            while mark <= now_done {
                mark += step;
            }
        }
    }
    let elapsed = start.elapsed();
    let (rss_end, peak) = memory(pid);
    let _ = server.kill();
    let _ = server.wait();

    let statuses = statuses.lock().unwrap();
    let wrong: Vec<String> = statuses
        .iter()
        .filter(|((expected, got), _)| expected != got)
        .map(|((expected, got), count)| format!("{count} x {got} instead of {expected}"))
        .collect();
    let answers: usize = statuses.values().sum();
    println!(
        "{} requests ({answers} answers with the replays) in {:.1} s ({:.0}/s) over {} \
         connections; RSS {rss_start:.1} MB before, {rss_end:.1} MB after, peak {peak:.1} MB",
        options.requests,
        elapsed.as_secs_f64(),
        answers as f64 / elapsed.as_secs_f64(),
        options.connections
    );
    let by_status: BTreeMap<u16, usize> =
        statuses
            .iter()
            .fold(BTreeMap::new(), |mut by, ((_, got), count)| {
                *by.entry(*got).or_default() += count;
                by
            });
    println!("answers by status: {by_status:?}");
    if !wrong.is_empty() {
        eprintln!("axum_load: unexpected answers: {}", wrong.join(", "));
        std::process::exit(1);
    }
    if rss_end > options.max_rss_mb {
        eprintln!(
            "axum_load: the server ended at {rss_end:.1} MB, above --max-rss-mb {}",
            options.max_rss_mb
        );
        std::process::exit(1);
    }
}
