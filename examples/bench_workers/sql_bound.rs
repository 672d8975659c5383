//! `--sql-bound`: the schema's own bound. What W5 runs taken by workers write, written with
//! the simplest SQL that does so and no hookflow runtime: per run, the create's insert (an
//! enqueued run: no lease), then a claim (the lease and its fence) and the six commits' rows
//! (the fenced update of the run's row, its events inserted only when the fence held; the
//! run's end on the last), `--group` runs' commits a statement (the committer's groups are
//! ~8 commits), from `--conns` connections at once (64: the floor's). Same tables, indexes,
//! columns and sizes as the store's (the event bodies are as long as a W5 run's, seq by seq).

use std::sync::Arc;
use std::time::Instant;

use super::cpu;

/// The lengths of a W5 run's 17 events (its journal in `hookflow_events`, seq by seq), and
/// the first seq of each of its six commits (the hook's firing rides with step 3, the
/// handler's completion with step 4's start...: 17 events in 6 commits, as a worker writes).
const EVENT_LENGTHS: [usize; 17] = [
    124, 87, 89, 180, 89, 180, 89, 180, 121, 88, 153, 141, 90, 181, 90, 181, 80,
];
const COMMIT_STARTS: [usize; 6] = [0, 4, 6, 9, 12, 14];

/// A run's row as `create` inserts it for an enqueued run.
const CREATE: &str = "INSERT INTO hookflow_runs (run_id, workflow, version, input, status,
        idempotency_key, request_id, actor, origin, additional_data, output, error,
        created_at, updated_at, owner, fence, lease_until, lease_micros, deadline)
    VALUES ($1, 'w5', 1, $2, 'running', NULL, NULL, NULL, 'local', NULL, NULL, NULL,
        $3, $3, NULL, 0, NULL, 0, NULL)";

/// A claim of the group's runs: the lease, a new fence.
const CLAIM: &str = "UPDATE hookflow_runs SET owner = $2, fence = fence + 1,
        lease_until = $3::BIGINT + 2000000, lease_micros = 2000000
    WHERE run_id = ANY($1) RETURNING run_id, fence";

/// A step's commit for each run of the group: its row's lease renewed if its fence holds, its
/// events inserted only then.
const STEP: &str = "WITH u AS (
        UPDATE hookflow_runs r SET lease_until = $3 + r.lease_micros, updated_at = $3
        FROM UNNEST($1::TEXT[], $2::BIGINT[]) AS c (run_id, fence)
        WHERE r.run_id = c.run_id AND r.fence = c.fence
        RETURNING r.run_id
    ), i AS (
        INSERT INTO hookflow_events (run_id, seq, event)
        SELECT e.run_id, e.seq, e.event
        FROM UNNEST($4::TEXT[], $5::BIGINT[], $6::TEXT[]) AS e (run_id, seq, event)
        WHERE e.run_id IN (SELECT run_id FROM u)
    )
    SELECT run_id FROM u";

/// The last commit: as [`STEP`], the run ended (status, output, its lease dropped).
const END: &str = "WITH u AS (
        UPDATE hookflow_runs r SET status = 'completed', output = $7, owner = NULL,
            lease_until = NULL, updated_at = $3
        FROM UNNEST($1::TEXT[], $2::BIGINT[]) AS c (run_id, fence)
        WHERE r.run_id = c.run_id AND r.fence = c.fence
        RETURNING r.run_id
    ), i AS (
        INSERT INTO hookflow_events (run_id, seq, event)
        SELECT e.run_id, e.seq, e.event
        FROM UNNEST($4::TEXT[], $5::BIGINT[], $6::TEXT[]) AS e (run_id, seq, event)
        WHERE e.run_id IN (SELECT run_id FROM u)
    )
    SELECT run_id FROM u";

/// What the bound measured: the creates, then the runs (claims and commits), each in runs/s
/// and the server's CPU µs a run.
pub struct Bound {
    pub creates_per_s: f64,
    pub creates_server_us: f64,
    pub runs_per_s: f64,
    pub runs_server_us: f64,
    pub client_us: f64,
}

impl Bound {
    /// Runs/s of both phases one after the other (a create, then its run).
    pub fn whole_per_s(&self) -> f64 {
        1.0 / (1.0 / self.creates_per_s + 1.0 / self.runs_per_s)
    }
}

/// A run id as long as the store's (a UUID's text).
fn run_id(n: u64) -> String {
    format!("00000000-0000-7000-8000-{n:012}")
}

/// An event body `len` bytes long, JSON like the store's.
fn body(seq: usize, len: usize) -> String {
    let mut s =
        format!("{{\"seq\":{seq},\"at_micros\":1796412922228465,\"event\":\"e\",\"pad\":\"");
    while s.len() + 2 < len {
        s.push('x');
    }
    s.push_str("\"}");
    s
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Runs `work(connection index, client)` on `conns` connections at once; its wall time in
/// seconds and the server's CPU seconds meanwhile.
async fn on_conns<F, Fut>(url: &str, conns: u64, work: F) -> (f64, f64)
where
    F: Fn(u64, Arc<tokio_postgres::Client>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(Arc::new(client(url).await));
    }
    let server = cpu::server_pid(&clients[0]).await;
    let before = server.map(cpu::server).unwrap_or_default();
    let started = Instant::now();
    // The connections stay open until the server's CPU is read: a backend that ended is not
    // counted.
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(work(i as u64, Arc::clone(c))))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let wall = started.elapsed().as_secs_f64();
    let spent = server.map_or(0.0, |pid| cpu::spent_since(&before, &cpu::server(pid)));
    drop(clients);
    (wall, spent)
}

/// `runs` runs (rounded down to `conns` × `group`), created, then claimed and committed
/// `group` runs a statement, on `conns` connections. The tables must be empty.
pub async fn measure(url: &str, runs: u64, group: u64, conns: u64) -> Bound {
    let per_conn = (runs / conns / group).max(1) * group;
    let total = per_conn * conns;
    let own = move |conn: u64| (conn * per_conn..(conn + 1) * per_conn).map(run_id);
    let (create_wall, create_cpu) = on_conns(url, conns, move |conn, c| async move {
        let statement = c.prepare(CREATE).await.unwrap();
        let input = "x".repeat(37);
        for id in own(conn) {
            c.execute(&statement, &[&id, &input, &1_796_412_922_228_465_i64])
                .await
                .unwrap();
        }
    })
    .await;
    let self_mid = cpu::seconds(std::process::id()).unwrap_or(0.0);
    let bodies: Arc<Vec<String>> = Arc::new(
        EVENT_LENGTHS
            .iter()
            .enumerate()
            .map(|(seq, &len)| body(seq, len))
            .collect(),
    );
    let (runs_wall, runs_cpu) = on_conns(url, conns, move |conn, c| {
        let bodies = Arc::clone(&bodies);
        async move {
            let claim = c.prepare(CLAIM).await.unwrap();
            let step = c.prepare(STEP).await.unwrap();
            let end = c.prepare(END).await.unwrap();
            let ids: Vec<String> = own(conn).collect();
            let now = 1_796_412_922_228_465_i64;
            let output = "y".repeat(56);
            for chunk in ids.chunks(group as usize) {
                let ids = chunk.to_vec();
                let claimed = c.query(&claim, &[&ids, &"bound", &now]).await.unwrap();
                let fences: Vec<i64> = ids
                    .iter()
                    .map(|id| {
                        claimed
                            .iter()
                            .find(|r| r.get::<_, &str>(0) == id)
                            .map_or(0, |r| r.get(1))
                    })
                    .collect();
                for (k, &first) in COMMIT_STARTS.iter().enumerate() {
                    let last = COMMIT_STARTS
                        .get(k + 1)
                        .copied()
                        .unwrap_or(EVENT_LENGTHS.len());
                    let (mut event_ids, mut seqs, mut events) =
                        (Vec::new(), Vec::new(), Vec::new());
                    for id in &ids {
                        for seq in first..last {
                            event_ids.push(id.clone());
                            seqs.push(seq as i64);
                            events.push(bodies[seq].as_str());
                        }
                    }
                    let written = if last == EVENT_LENGTHS.len() {
                        c.query(
                            &end,
                            &[&ids, &fences, &now, &event_ids, &seqs, &events, &output],
                        )
                        .await
                    } else {
                        c.query(&step, &[&ids, &fences, &now, &event_ids, &seqs, &events])
                            .await
                    }
                    .unwrap();
                    assert_eq!(written.len(), ids.len(), "every fence holds");
                }
            }
        }
    })
    .await;
    let self_after = cpu::seconds(std::process::id()).unwrap_or(0.0);
    let n = total as f64;
    Bound {
        creates_per_s: n / create_wall,
        creates_server_us: create_cpu * 1e6 / n,
        runs_per_s: n / runs_wall,
        runs_server_us: runs_cpu * 1e6 / n,
        client_us: (self_after - self_mid) * 1e6 / n,
    }
}
