//! Three worker processes, one of them killed with SIGKILL at random moments and started
//! again: nothing lost, nothing repeated, no two executions of a run at once.

use super::verify::verify;
use super::*;

#[test]
fn killed_workers_lose_nothing_repeat_nothing_and_never_overlap() {
    let runs: u64 = env_or("HOOKFLOW_WORKERS_RUNS", 1000);
    let kills: usize = env_or("HOOKFLOW_WORKERS_KILLS", 6);
    let seed: u64 = env_or(
        "HOOKFLOW_WORKERS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    println!(
        "workers test: {runs} runs, 3 worker processes, {kills} kills, seed {seed} \
         (HOOKFLOW_WORKERS_SEED={seed} replays the kill moments)"
    );
    let url = pg_database("workers");
    let mut rng = Rng(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let start = Instant::now();
        // The store's and the ledger's tables exist before the workers start.
        let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
        let client = connect(&url).await;
        client.batch_execute(LEDGER_SCHEMA).await.unwrap();

        let mut workers: Vec<Incarnation> = (0..3)
            .map(|slot| spawn_worker(&url, format!("w{slot}-0")))
            .collect();
        enqueue(Arc::clone(&store), runs).await;
        let enqueued = start.elapsed();

        // Worker 0 is killed at random moments spread over the test (when a random share of
        // the runs is over, once it holds runs or a little later), each time started again
        // under a new id. The moment each incarnation died bounds its executions.
        let mut due: Vec<u64> = (0..kills)
            .map(|_| runs / 20 + rng.below(runs * 3 / 4 + 1))
            .collect();
        due.sort_unstable_by(|a, b| b.cmp(a));
        let mut killed: HashMap<String, i64> = HashMap::new();
        let mut held_at_kills = 0;
        let mut due_since: Option<Instant> = None;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let remaining = store
                .list(Some(StoredStatus::Running), None, usize::MAX)
                .await
                .unwrap()
                .runs;
            if remaining.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} runs left after 300 s, e.g. {:?}",
                remaining.len(),
                remaining[0]
            );
            let finished = runs - remaining.len() as u64;
            if due.last().is_some_and(|&at| finished >= at) {
                let since = *due_since.get_or_insert_with(Instant::now);
                let victim = &mut workers[0];
                let held = remaining
                    .iter()
                    .filter(|r| r.owner.as_deref() == Some(victim.worker.as_str()))
                    .count();
                if held > 0 || since.elapsed() > Duration::from_millis(300) {
                    tokio::time::sleep(Duration::from_millis(rng.below(30))).await;
                    victim.child.kill().unwrap(); // SIGKILL
                    victim.child.wait().unwrap();
                    killed.insert(victim.worker.clone(), now_micros());
                    held_at_kills += held;
                    let worker = format!("w0-{}", killed.len());
                    workers[0] = spawn_worker(&url, worker);
                    due.pop();
                    due_since = None;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let worked = start.elapsed();

        // Every run is over: the workers shut down and report.
        let mut reports = Vec::new();
        for mut incarnation in workers {
            drop(incarnation.child.stdin.take());
            let output = incarnation.child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", incarnation.worker);
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let report = stdout
                .lines()
                .find_map(|l| l.split_once("WORKER-REPORT ").map(|(_, r)| r.to_owned()))
                .unwrap_or_else(|| panic!("no report from {}: {stdout}", incarnation.worker));
            assert!(report.ends_with("store_errors=0"), "{report}");
            reports.push(report);
        }

        let checked = verify(&store, &client, runs, &killed).await;
        assert_eq!(
            killed.len(),
            kills,
            "the runs were over before the last kill"
        );
        if kills > 0 {
            assert!(
                checked.taken_over_from_killed > 0,
                "no run of a killed worker was taken over"
            );
        }
        println!(
            "{runs} runs in {:.1} s (enqueued in {:.1} s), verified in {:.1} s; {} kills (the \
             victim holding {held_at_kills} runs in all); {} runs taken over from a killed \
             worker, {} claimed more than once; {} executions of steps, compensations and \
             hook handlers, {} repeated effects absorbed by idempotency keys, of which {} \
             jobs delivered again with the same id",
            worked.as_secs_f64(),
            enqueued.as_secs_f64(),
            (start.elapsed() - worked).as_secs_f64(),
            killed.len(),
            checked.taken_over_from_killed,
            checked.claimed_again,
            checked.executions,
            checked.repeated,
            checked.redelivered,
        );
        for report in reports {
            println!("  {report}");
        }
    });
}
