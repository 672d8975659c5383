//! Two workers riding out a database that is stopped and started again, twice.

use super::verify::verify;
use super::*;

/// What a worker's `on_error` saw.
#[derive(Default, Debug)]
struct Seen {
    claim_unavailable: u64,
    release: u64,
    schedule_unavailable: u64,
    other: Vec<String>,
}

#[test]
fn workers_ride_out_a_database_outage() {
    let runs: u64 = env_or("HOOKFLOW_OUTAGE_RUNS", 300);
    // The store's own cluster, which this test stops; the ledger (the external system) is
    // on the shared server, which stays up.
    let cluster = PgCluster::start("outage");
    // Commits acknowledged before the crash must survive it, as on a production server: the
    // test clusters run with `synchronous_commit = off` for speed, under which a crash loses
    // the last acknowledged commits, a claim among them (and two workers then hold one fence).
    pg_psql(
        cluster.url(),
        &["ALTER DATABASE hookflow SET synchronous_commit = on"],
    );
    let ledger_url = pg_database("outage_ledger");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let start = Instant::now();
        let store = Arc::new(PostgresStore::connect(cluster.url()).await.unwrap());
        let mut workers = Vec::new();
        for id in ["a", "b"] {
            let seen = Arc::new(Mutex::new(Seen::default()));
            let engine = engine(
                PostgresStore::connect(cluster.url()).await.unwrap(),
                Ledger::connect(&ledger_url, id).await,
                Duration::from_secs(1),
            );
            let on_error = Arc::clone(&seen);
            let worker = Worker::new(&engine)
                .concurrency(8)
                .poll_interval(Duration::from_millis(20))
                .max_backoff(Duration::from_millis(400))
                .on_error(move |error| {
                    let mut seen = on_error.lock().unwrap();
                    match error {
                        WorkerError::Claim {
                            source: StoreError::Unavailable { .. },
                            ..
                        } => seen.claim_unavailable += 1,
                        WorkerError::Release { .. } => seen.release += 1,
                        // The scheduler, beside the claims, finds the store down too.
                        WorkerError::Schedule(hookflow::ScheduleError::Store {
                            source: StoreError::Unavailable { .. } | StoreError::NoAnswer { .. },
                            ..
                        }) => seen.schedule_unavailable += 1,
                        other => seen.other.push(other.to_string()),
                    }
                })
                .start()
                .unwrap();
            workers.push((id, worker, seen));
        }
        enqueue(Arc::clone(&store), runs).await;

        // A quarter of the runs done, the database goes down for 2.5 s (`pg_ctl stop -m
        // immediate`: as if it crashed); half of them done, again (`-m fast`: a restart for
        // maintenance). Each time the workers meet errors while it is down.
        let finished = |workers: &[(&str, hookflow::WorkerHandle, Arc<Mutex<Seen>>)]| {
            workers
                .iter()
                .map(|(_, w, _)| w.report().finished())
                .sum::<u64>()
        };
        let store_errors = |workers: &[(&str, hookflow::WorkerHandle, Arc<Mutex<Seen>>)]| {
            workers
                .iter()
                .map(|(_, w, _)| w.report().store_errors)
                .sum::<u64>()
        };
        let mut outages = Vec::new();
        for (share, mode) in [(4, "immediate"), (2, "fast")] {
            while finished(&workers) < runs / share {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let before = finished(&workers);
            assert!(before < runs, "the runs were over before the outage");
            let errors_before = store_errors(&workers);
            let down = Instant::now();
            cluster.halt(mode);
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let errors = store_errors(&workers) - errors_before;
            cluster.restart();
            assert!(
                errors > 0,
                "no store error while the database was down ({mode})"
            );
            outages.push(format!(
                "{:.1} s ({mode}, {before} runs finished before it, {errors} failed claims)",
                down.elapsed().as_secs_f64()
            ));
        }

        drained(&store, Duration::from_secs(120)).await;
        let worked = start.elapsed();
        let mut interrupted = 0;
        for (id, worker, seen) in workers {
            let report = worker.shutdown(Duration::from_secs(5)).await;
            let seen = seen.lock().unwrap();
            println!(
                "  worker {id}: {}; on_error saw {seen:?}",
                describe(&report)
            );
            assert!(report.store_errors > 0, "worker {id} met no store error");
            assert!(
                seen.claim_unavailable > 0,
                "worker {id} reported no WorkerError::Claim"
            );
            assert_eq!(
                report.store_errors, seen.claim_unavailable,
                "worker {id}: every failed claim is reported"
            );
            assert!(seen.other.is_empty(), "worker {id}: {:?}", seen.other);
            interrupted += report.interrupted;
        }
        assert!(
            interrupted > 0,
            "no run was interrupted by the outage (the workers were idle)"
        );

        let client = connect(&ledger_url).await;
        let checked = verify(&store, &client, runs, &HashMap::new()).await;
        assert!(
            checked.claimed_again > 0,
            "no run was resumed after the outage"
        );
        println!(
            "{runs} runs in {:.1} s through outages of {}; {interrupted} runs interrupted, \
             {} resumed by replay; {} repeated effects absorbed by idempotency keys, of which \
             {} jobs delivered again with the same id",
            worked.as_secs_f64(),
            outages.join(" and "),
            checked.claimed_again,
            checked.repeated,
            checked.redelivered,
        );
    });
}
