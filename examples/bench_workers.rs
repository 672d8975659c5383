//! W5 on PostgreSQL with worker processes:
//! `cargo run --release --example bench_workers -- --runs 4000 --workers 1,2,4 --conc 16`.
//! With `--workers-only`, only the floor and the workers phase are measured (no W5 in place,
//! no resumption): quicker rounds for the workers' target. With `--sql-bound [--group N]
//! [--conns N]` (8 runs a statement, 64 connections by default), the floor and the schema's
//! own bound: W5's rows written by plain SQL, no runtime (`bench_workers/sql_bound.rs`).
//!
//! Starts a throw-away PostgreSQL with its durable defaults (`scripts/postgres.sh` with
//! `HOOKFLOW_PG_SETTINGS=""`: fsync and synchronous commits on), unless `--url` names one.
//! Measures, printing a table and one JSON line:
//! - the driver's floor: a bare tokio-postgres insert-commit loop, sequential and with 64
//!   connections in flight;
//! - W5 run in place (`engine.run`), sequential;
//! - W5 runs enqueued beforehand and taken by 1, 2, 4 worker processes (this program
//!   re-executed with `--child`), `--conc` runs in flight each: runs per second from the
//!   workers' start to the last run's end, every run checked completed;
//! - resumption: a worker holding runs is killed with SIGKILL; the time until each of its
//!   runs is claimed by the surviving worker, against the lease duration;
//!
//! then the targets of issue 20 with `met`/`missed`. For W5 in place, the store's commits
//! per run are counted in the program (a counting wrapper around the store), and the
//! database's side per run from PostgreSQL's statistics: `pg_stat_database.xact_commit`
//! (every transaction of the database, the reads' included), `pg_stat_wal.wal_write` and
//! `wal_sync` (WAL writes and flushes to disk) and the `pg_current_wal_lsn()` bytes, each a
//! delta over the sequential phase (read 11 s after it, once the backends reported).

#[path = "../benches/counting_store.rs"]
mod counting_store;
#[path = "bench_workers/cpu.rs"]
mod cpu;
#[path = "bench_workers/sql_bound.rs"]
mod sql_bound;
#[path = "bench_workers/statements.rs"]
mod statements;
#[path = "../benches/targets.rs"]
mod targets;
#[path = "../benches/w5/mod.rs"]
mod w5;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookflow::store::postgres::PostgresStore;
use hookflow::{RunId, Worker};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some(url) = arg("--child") {
        let conc = num("--conc", 16) as usize;
        let lease = Duration::from_millis(num("--lease-ms", 2000));
        let id = arg("--id").unwrap_or_else(|| "child".into());
        runtime.block_on(child(&url, conc, lease, &id));
        return;
    }
    let (url, cluster) = match arg("--url") {
        Some(url) => (url, None),
        None => {
            let dir =
                std::env::temp_dir().join(format!("hookflow-bench-pg-{}", std::process::id()));
            (start_cluster(&dir), Some(dir))
        }
    };
    let runs = num("--runs", 4000);
    let conc = num("--conc", 16);
    let lease_ms = num("--lease-ms", 2000);
    let workers: Vec<u64> = arg("--workers")
        .unwrap_or_else(|| "1,2,4".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();

    let workers_only = std::env::args().any(|a| a == "--workers-only");

    let (floor_seq, floor_conc, floor_cpu) = runtime.block_on(floor(&url, 2000));
    if std::env::args().any(|a| a == "--sql-bound") {
        let floor = (floor_conc, floor_cpu);
        let shape = (num("--group", 8), num("--conns", 64).max(1));
        runtime.block_on(sql_bound(&url, runs, shape, floor));
        stop(cluster);
        return;
    }
    let (seq, per_run) = if workers_only {
        (f64::NAN, PerRun::not_measured())
    } else {
        runtime.block_on(sequential(&url, 500))
    };
    let mut by_workers = Vec::new();
    for &w in &workers {
        let (rate, cpu) = runtime.block_on(with_workers(&url, runs, w, conc, lease_ms));
        by_workers.push((w, rate, cpu));
    }
    let (resume_mean, resume_max, orphans) = if workers_only {
        (f64::NAN, f64::NAN, 0)
    } else {
        runtime.block_on(resumption(&url, lease_ms, conc))
    };

    println!("W5 on PostgreSQL (durable defaults), {runs} enqueued runs per worker count");
    println!("  floor: bare insert-commit, sequential        {floor_seq:>8.0} commits/s");
    println!(
        "  floor: bare insert-commit, 64 in flight      {floor_conc:>8.0} commits/s, server CPU {floor_cpu:.0} µs a commit"
    );
    if !workers_only {
        println!("  W5 in place, sequential                      {seq:>8.0} runs/s");
        println!(
            "    per run: {:.2} store commits ({:.2} carrying the run's end) and {:.2} creates; \
             database: {:.2} transactions (xact_commit), {:.2} WAL writes, {:.2} WAL flushes \
             (pg_stat_wal), {:.0} WAL bytes (pg_current_wal_lsn)",
            per_run.commits,
            per_run.ends,
            per_run.creates,
            per_run.xacts,
            per_run.wal_writes,
            per_run.wal_syncs,
            per_run.wal_bytes
        );
    }
    for (w, rate, cpu) in &by_workers {
        println!("  W5, {w} worker process(es) x {conc} in flight    {rate:>8.0} runs/s");
        println!(
            "    CPU per run: worker processes {:.0} µs, PostgreSQL {:.0} µs: {} cores allow at most {:.0} runs/s",
            cpu.workers_us,
            cpu.server_us,
            cpu::cores(),
            cpu.ceiling()
        );
    }
    if !workers_only {
        println!(
            "  resumption after SIGKILL ({orphans} runs, lease {lease_ms} ms): mean {:.0} ms, max {:.0} ms = {:.2}x the lease",
            resume_mean * 1e3,
            resume_max * 1e3,
            resume_max * 1e3 / lease_ms as f64
        );
    }
    let mut targets = targets::Targets::default();
    if let Some((w, rate, _)) = by_workers.iter().find(|(w, _, _)| *w == 4) {
        targets.at_least(
            format!("{w} workers x {conc}: runs/s over the 64-in-flight floor ({floor_conc:.0})"),
            rate / floor_conc,
            0.5,
            "x",
        );
    }
    // W5: five steps and one hook handler, each committed; the run's end rides on the last.
    if !workers_only {
        targets.at_most(
            "W5 in place: store commits per run (5 steps + 1 handler)",
            per_run.commits,
            6.0,
            "",
        );
    }
    targets.print();
    let workers_json: Vec<String> = by_workers
        .iter()
        .map(|(w, r, cpu)| {
            format!(
                "\"{w}\":{{\"runs_per_s\":{r:.0},\"cpu_us_per_run\":{{\"workers\":{:.0},\"server\":{:.0}}}}}",
                cpu.workers_us, cpu.server_us
            )
        })
        .collect();
    println!(
        "{{\"targets\":{},\"w5_seq_per_run\":{{\"commits\":{},\"creates\":{},\"xact_commit\":{},\"wal_write\":{},\"wal_sync\":{},\"wal_bytes\":{}}},\"runs\":{runs},\"conc\":{conc},\"floor_seq\":{floor_seq:.0},\"floor_conc64\":{floor_conc:.0},\"w5_seq\":{},\"workers\":{{{}}},\"lease_ms\":{lease_ms},\"resume_mean_ms\":{},\"resume_max_ms\":{}}}",
        targets.json(),
        json_num(per_run.commits, 2),
        json_num(per_run.creates, 2),
        json_num(per_run.xacts, 2),
        json_num(per_run.wal_writes, 2),
        json_num(per_run.wal_syncs, 2),
        json_num(per_run.wal_bytes, 0),
        json_num(seq, 0),
        workers_json.join(","),
        json_num(resume_mean * 1e3, 0),
        json_num(resume_max * 1e3, 0)
    );
    stop(cluster);
}

/// Stops the cluster this program started, if it did.
fn stop(cluster: Option<std::path::PathBuf>) {
    if let Some(dir) = cluster {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", dir.to_str().unwrap()])
            .status();
    }
}

/// `--sql-bound`: the schema's own bound (see [`sql_bound`]) against the floor.
async fn sql_bound(
    url: &str,
    runs: u64,
    (group, conns): (u64, u64),
    (floor_conc, floor_cpu): (f64, f64),
) {
    reset(url).await;
    let b = sql_bound::measure(url, runs, group, conns).await;
    println!(
        "The schema's bound: W5's rows written with plain SQL, 64 connections, {group} runs a statement"
    );
    println!(
        "  floor: bare insert-commit, 64 in flight      {floor_conc:>8.0} commits/s, server CPU {floor_cpu:.0} µs a commit"
    );
    println!(
        "  creates                                      {:>8.0} runs/s, server CPU {:.0} µs a run",
        b.creates_per_s, b.creates_server_us
    );
    println!(
        "  claims + 6 commits                           {:>8.0} runs/s ({:.3}x the floor), server CPU {:.0} µs a run, this program {:.0} µs",
        b.runs_per_s,
        b.runs_per_s / floor_conc,
        b.runs_server_us,
        b.client_us
    );
    println!(
        "  both                                         {:>8.0} runs/s ({:.3}x the floor)",
        b.whole_per_s(),
        b.whole_per_s() / floor_conc
    );
    println!(
        "{{\"sql_bound\":{{\"group\":{group},\"conns\":{conns},\"floor_conc64\":{floor_conc:.0},\"floor_server_us\":{floor_cpu:.0},\"creates_per_s\":{:.0},\"creates_server_us\":{:.0},\"runs_per_s\":{:.0},\"runs_server_us\":{:.0},\"client_us\":{:.0}}}}}",
        b.creates_per_s, b.creates_server_us, b.runs_per_s, b.runs_server_us, b.client_us
    );
}

/// `v` with `decimals` decimals, or `null` when it was not measured (NaN).
fn json_num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "null".into()
    } else {
        format!("{v:.decimals$}")
    }
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh")
}

fn start_cluster(dir: &std::path::Path) -> String {
    let out = Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(dir)
        .arg(std::process::id().to_string())
        .env("HOOKFLOW_PG_SETTINGS", "")
        .output()
        .expect("run scripts/postgres.sh");
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && url.starts_with("postgres://"),
        "cannot start PostgreSQL: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    url
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// A bare insert-commit loop: sequential, then 64 connections at once (commits/s of each,
/// and the server's CPU µs a commit of the second).
async fn floor(url: &str, n: u64) -> (f64, f64, f64) {
    let c = client(url).await;
    c.batch_execute(statements::FLOOR_TABLE).await.unwrap();
    let body = "x".repeat(200);
    let started = Instant::now();
    for i in 0..n as i64 {
        c.execute(statements::FLOOR_INSERT, &[&i, &body])
            .await
            .unwrap();
    }
    let seq = n as f64 / started.elapsed().as_secs_f64();
    let mut clients = Vec::new();
    for _ in 0..64 {
        clients.push(Arc::new(client(url).await));
    }
    let server = cpu::server_pid(&c).await;
    let server_before = server.map(cpu::server).unwrap_or_default();
    let started = Instant::now();
    let per = (n * 4 / 64) as i64;
    // The connections stay open until the server's CPU is read (a backend ended is not
    // counted).
    let tasks: Vec<_> = clients
        .iter()
        .map(|c| {
            let c = Arc::clone(c);
            let body = body.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    c.execute(statements::FLOOR_INSERT, &[&i, &body])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let conc = (per * 64) as f64 / started.elapsed().as_secs_f64();
    let spent = server.map_or(0.0, |pid| {
        cpu::spent_since(&server_before, &cpu::server(pid))
    });
    drop(clients);
    (seq, conc, spent * 1e6 / (per * 64) as f64)
}

async fn reset(url: &str) {
    // The store creates its tables; empty them between measurements.
    drop(PostgresStore::connect(url).await.unwrap());
    client(url)
        .await
        .batch_execute(statements::RESET)
        .await
        .unwrap();
}

async fn finished(c: &tokio_postgres::Client) -> (i64, i64) {
    let row = c.query_one(statements::FINISHED, &[]).await.unwrap();
    (row.get(0), row.get(1))
}

/// What one W5 run in place costs the store and the database, on average.
struct PerRun {
    commits: f64,
    ends: f64,
    creates: f64,
    xacts: f64,
    wal_writes: f64,
    wal_syncs: f64,
    wal_bytes: f64,
}

impl PerRun {
    /// Not measured (`--workers-only`): every figure NaN.
    fn not_measured() -> Self {
        PerRun {
            commits: f64::NAN,
            ends: f64::NAN,
            creates: f64::NAN,
            xacts: f64::NAN,
            wal_writes: f64::NAN,
            wal_syncs: f64::NAN,
            wal_bytes: f64::NAN,
        }
    }
}

/// The database's counters: transactions committed, WAL writes, WAL flushes, the WAL's
/// position in bytes. Read on a fresh connection, 11 s after the work measured, so that
/// the backends have reported their statistics (PostgreSQL 15 holds back an idle backend's
/// for up to 10 s when it reported less than a second before: read sooner, the last
/// second's transactions are missing).
async fn db_counters(url: &str) -> [f64; 4] {
    tokio::time::sleep(Duration::from_secs(11)).await;
    let row = client(url)
        .await
        .query_one(statements::DB_COUNTERS, &[])
        .await
        .unwrap();
    [row.get(0), row.get(1), row.get(2), row.get(3)]
}

/// W5 run in place, one after the other: runs/s, and what a run cost (see [`PerRun`]).
async fn sequential(url: &str, n: u64) -> (f64, PerRun) {
    reset(url).await;
    let counts = Arc::new(counting_store::Counts::default());
    let store = counting_store::Counting::new(
        Arc::new(PostgresStore::connect(url).await.unwrap()),
        Arc::clone(&counts),
    );
    let engine = w5::durable_engine(store);
    let before = db_counters(url).await;
    let started = Instant::now();
    for _ in 0..n {
        let outcome = engine.run::<w5::W5>(w5::input()).await;
        assert_eq!(outcome.status(), hookflow::RunStatus::Completed);
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let after = db_counters(url).await;
    drop(engine);
    let load = |c: &std::sync::atomic::AtomicU64| {
        c.load(std::sync::atomic::Ordering::Relaxed) as f64 / n as f64
    };
    let per = |i: usize| (after[i] - before[i]) / n as f64;
    let per_run = PerRun {
        commits: load(&counts.commits),
        ends: load(&counts.ends),
        creates: load(&counts.creates),
        xacts: per(0),
        wal_writes: per(1),
        wal_syncs: per(2),
        wal_bytes: per(3),
    };
    (rate, per_run)
}

fn spawn_child(url: &str, conc: u64, lease_ms: u64, id: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--child", url, "--conc", &conc.to_string()])
        .args(["--lease-ms", &lease_ms.to_string(), "--id", id])
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// A worker process: works until killed.
async fn child(url: &str, conc: usize, lease: Duration, id: &str) {
    let store = PostgresStore::connect(url).await.unwrap();
    let engine = w5::durable_builder(store)
        .worker_id(id)
        .lease(lease)
        .build();
    let _worker = Worker::new(&engine)
        .concurrency(conc)
        .poll_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    std::future::pending::<()>().await;
}

async fn enqueue(url: &str, n: u64) -> Vec<RunId> {
    let engine = Arc::new(w5::durable_engine(
        PostgresStore::connect(url).await.unwrap(),
    ));
    let mut tasks = Vec::new();
    for chunk in 0..8 {
        let engine = Arc::clone(&engine);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in (chunk..n).step_by(8) {
                ids.push(engine.enqueue::<w5::W5>(w5::input()).await.unwrap());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids
}

/// `n` enqueued runs, taken by `workers` processes: runs/s, and the CPU time a run cost the
/// worker processes and the server.
async fn with_workers(
    url: &str,
    n: u64,
    workers: u64,
    conc: u64,
    lease_ms: u64,
) -> (f64, cpu::PerRun) {
    reset(url).await;
    enqueue(url, n).await;
    let c = client(url).await;
    let (xacts_before, wal_before) = xacts_and_wal(&c).await;
    let server = cpu::server_pid(&c).await;
    let server_before = server.map(cpu::server).unwrap_or_default();
    let started = Instant::now();
    let mut children: Vec<Child> = (0..workers)
        .map(|i| spawn_child(url, conc, lease_ms, &format!("bench-{workers}-{i}")))
        .collect();
    // Polled through the status index every 10 ms, so that the polling costs the server
    // little of the CPU measured.
    let any_running = c.prepare(statements::ANY_RUNNING).await.unwrap();
    loop {
        let running: bool = c.query_one(&any_running, &[]).await.unwrap().get(0);
        if !running {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "runs of the {n} still running after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let (completed, other) = finished(&c).await;
    assert_eq!((completed as u64, other), (n, 0), "every W5 run completes");
    let workers_cpu: f64 = children.iter().filter_map(|c| cpu::seconds(c.id())).sum();
    let server_cpu = server.map_or(0.0, |pid| {
        cpu::spent_since(&server_before, &cpu::server(pid))
    });
    let (xacts_after, wal_after) = xacts_and_wal(&c).await;
    let per_run = (xacts_after - xacts_before) as f64 / n as f64;
    let wal_per_run = (wal_after - wal_before) / n as f64;
    eprintln!(
        "  ({workers} workers: {per_run:.1} transactions per run, polling included; \
         {wal_per_run:.0} WAL bytes per run)"
    );
    let cpu = cpu::PerRun {
        workers_us: workers_cpu * 1e6 / n as f64,
        server_us: server_cpu * 1e6 / n as f64,
    };
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    (rate, cpu)
}

/// Transactions committed in the database so far (as the backends reported them: a live
/// backend reports at most once a second), and the WAL's position in bytes.
async fn xacts_and_wal(c: &tokio_postgres::Client) -> (i64, f64) {
    let row = c.query_one(statements::XACTS_AND_WAL, &[]).await.unwrap();
    (row.get(0), row.get(1))
}

/// Kills a worker that holds runs; measures how long until the other worker claims each.
async fn resumption(url: &str, lease_ms: u64, conc: u64) -> (f64, f64, usize) {
    reset(url).await;
    enqueue(url, 20_000).await;
    let c = client(url).await;
    let mut victim = spawn_child(url, conc, lease_ms, "victim");
    // Let the victim complete some runs and hold others, then kill it at once.
    loop {
        let (completed, _) = finished(&c).await;
        let held: i64 = c
            .query_one(statements::HELD_BY, &[&"victim"])
            .await
            .unwrap()
            .get(0);
        if completed > 200 && held > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = victim.kill();
    let killed = Instant::now();
    let _ = victim.wait();
    let orphans: Vec<String> = c
        .query(statements::HELD_RUNS, &[&"victim"])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!orphans.is_empty(), "the victim held runs when it died");
    let mut heir = spawn_child(url, conc, lease_ms, "heir");
    let mut resumed: Vec<f64> = Vec::new();
    let mut waiting = orphans.clone();
    while !waiting.is_empty() {
        let taken: Vec<String> = c
            .query(statements::TAKEN_FROM, &[&waiting, &"victim"])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let at = killed.elapsed().as_secs_f64();
        for id in &taken {
            resumed.push(at);
            waiting.retain(|w| w != id);
        }
        assert!(
            killed.elapsed() < Duration::from_millis(lease_ms * 10),
            "orphaned runs not resumed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = heir.kill();
    let _ = heir.wait();
    let mean = resumed.iter().sum::<f64>() / resumed.len() as f64;
    let max = resumed.iter().copied().fold(0.0, f64::max);
    (mean, max, orphans.len())
}
