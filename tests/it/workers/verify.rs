//! The checks of a workers test's end: the ledger's effects, the journals' fences, and that no
//! two executions of a run overlapped in time.

use super::*;

/// What [`verify`] counted.
pub(super) struct Checked {
    pub(super) executions: usize,
    pub(super) repeated: i64,
    /// Jobs delivered again with an id the ledger had (part of `repeated`).
    pub(super) redelivered: i64,
    pub(super) claimed_again: usize,
    pub(super) taken_over_from_killed: usize,
}

/// One execution of a step, a compensation or a hook handler, as the ledger recorded it.
struct Execution {
    origin: String,
    fence: u64,
    worker: String,
    started_at: i64,
    ended_at: Option<i64>,
}

/// Checks that the `runs` orders ended as they should: each effect, undo and hook handler's
/// effect applied exactly once, each job of a completed run delivered (once by its id) and
/// none of a compensated run, the journals' fences, and (with `killed`: when each killed
/// worker died) that no executions of a run under different fences overlap in time.
pub(super) async fn verify(
    store: &PostgresStore,
    ledger: &tokio_postgres::Client,
    runs: u64,
    killed: &HashMap<String, i64>,
) -> Checked {
    let records = store.list(None, None, usize::MAX).await.unwrap().runs;
    let mut numbers: Vec<u64> = records.iter().map(number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=runs).collect::<Vec<_>>(), "a run is missing");

    // The ledger: exactly once each effect, each undo, each handler's effect and each job.
    let mut effects: HashMap<String, (String, String)> = HashMap::new();
    for row in ledger
        .query("SELECT key, run_id, what FROM ledger", &[])
        .await
        .unwrap()
    {
        effects.insert(row.get(0), (row.get(1), row.get(2)));
    }
    let repeated: i64 = ledger
        .query_one(
            "SELECT COALESCE(SUM(attempts - 1), 0)::BIGINT FROM ledger",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let redelivered: i64 = ledger
        .query_one(
            "SELECT COALESCE(SUM(attempts - 1), 0)::BIGINT FROM ledger WHERE key LIKE '%/%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut executions: HashMap<String, Vec<Execution>> = HashMap::new();
    let rows = ledger
        .query(
            "SELECT run_id, origin, fence, worker, started_at, ended_at FROM executions",
            &[],
        )
        .await
        .unwrap();
    let execution_count = rows.len();
    for row in rows {
        executions.entry(row.get(0)).or_default().push(Execution {
            origin: row.get(1),
            fence: u64::try_from(row.get::<_, i64>(2)).unwrap(),
            worker: row.get(3),
            started_at: row.get(4),
            ended_at: row.get(5),
        });
    }
    let compensated = runs / 3;
    let jobs = effects.keys().filter(|key| key.contains('/')).count() as u64;
    assert_eq!(jobs, runs - compensated, "one job per completed run");
    assert_eq!(
        effects.len() as u64,
        // 4 steps and 2 hook handlers a run, 3 undos a compensated run, a job a completed one
        6 * runs + 3 * compensated + jobs,
        "effects for unknown runs, steps, handlers or jobs"
    );

    let mut claimed_again = 0;
    let mut taken_over_from_killed = 0;
    for record in &records {
        let id = record.run_id.to_string();
        let number = number(record);
        let steps = ["reserve", "authorize", "create_order", "capture"];
        let effect = |pos: u32| {
            effects
                .get(&format!("{id}:{pos}:{}", steps[pos as usize]))
                .map(|(_, w)| w.as_str())
        };
        let undo = |pos: u32| {
            effects
                .get(&format!("{id}:{pos}:{}:undo", steps[pos as usize]))
                .map(|(_, w)| w.as_str())
        };
        for (pos, what) in ["reserve", "authorize", "create", "capture"]
            .into_iter()
            .enumerate()
        {
            assert_eq!(effect(pos as u32), Some(what), "order {number} step {pos}");
        }
        // The hook handlers' effects, by their idempotency keys (firing 0: `review`, a
        // `before` handler; firing 1: `notify`, an `after` handler), each once.
        let handler = |firing: u32| {
            // `{run}:hook{firing}:{index}:{handler}`: handler 0 of the firing, once.
            let prefix = format!("{id}:hook{firing}:0:");
            let mut found = effects.iter().filter(|(key, _)| key.starts_with(&prefix));
            let effect = found.next().map(|(_, (_, w))| w.as_str());
            assert!(found.next().is_none(), "two effects under {prefix}");
            effect
        };
        assert_eq!(handler(0), Some("review"), "order {number}");
        assert_eq!(handler(1), Some("notify"), "order {number}");
        // The job `create_order` (#2) enqueued: delivered once the run completed, by its id;
        // never for a compensated run.
        let job = effects
            .get(&format!("{id}/step2/0"))
            .map(|(_, w)| w.as_str());
        if number.is_multiple_of(3) {
            assert_eq!(job, None, "order {number}: a job of a compensated run");
        } else {
            let receipt = format!("send_receipt:{number}");
            assert_eq!(job, Some(receipt.as_str()), "order {number}: its job");
        }
        if number.is_multiple_of(3) {
            assert_eq!(record.status, StoredStatus::Compensated, "order {number}");
            assert_eq!(undo(0), Some("release"), "order {number}");
            assert_eq!(undo(1), Some("void"), "order {number}");
            assert_eq!(undo(2), Some("cancel"), "order {number}");
            assert_eq!(undo(3), None, "order {number}: the failed step is undone");
        } else {
            assert_eq!(record.status, StoredStatus::Completed, "order {number}");
            assert!((0..4).all(|p| undo(p).is_none()), "order {number} undone");
        }

        let (_, events) = store.load(record.run_id).await.unwrap();
        hookflow::testing::check_saga(&hookflow::Journal::from_events(events.clone()))
            .unwrap_or_else(|v| panic!("order {number}: {v}"));
        let runs_executions = executions.get(&id).map(Vec::as_slice).unwrap_or_default();

        // The fences: strictly increasing; every event after the claim it was committed
        // under; every completed step, compensation or hook handler executed under that
        // fence, by that worker, after the claim, and ended before its completion was
        // recorded.
        let mut claims: Vec<(String, u64)> = Vec::new();
        let mut claimed_at = 0;
        // The handlers completed so far in each hook firing: the next one's place.
        let mut handlers: HashMap<u32, u32> = HashMap::new();
        for event in &events {
            let origin = match &event.kind {
                EventKind::RunStarted { .. } | EventKind::RunResumed => continue,
                EventKind::Claimed { worker, fence } => {
                    if let Some((_, last)) = claims.last() {
                        assert!(
                            fence > last,
                            "order {number}: fence {fence} claimed after {last}"
                        );
                    }
                    claims.push((worker.clone(), *fence));
                    claimed_at = i64::try_from(event.at_micros).unwrap();
                    continue;
                }
                EventKind::StepCompleted { position, .. } => format!("step {position}"),
                EventKind::CompensationCompleted { position, .. } => format!("undo {position}"),
                EventKind::HookHandlerCompleted { firing, .. } => {
                    let index = handlers.entry(*firing).or_default();
                    *index += 1;
                    format!("hook {firing}.{}", *index - 1)
                }
                _ => {
                    assert!(
                        !claims.is_empty(),
                        "order {number}: {:?} before any claim",
                        event.kind
                    );
                    continue;
                }
            };
            let (worker, fence) = claims
                .last()
                .unwrap_or_else(|| panic!("order {number}: {:?} before any claim", event.kind));
            let at = i64::try_from(event.at_micros).unwrap();
            let ran = runs_executions.iter().any(|e| {
                e.origin == origin
                    && e.fence == *fence
                    && e.worker == *worker
                    && e.started_at >= claimed_at
                    && e.ended_at.is_some_and(|end| end <= at)
            });
            assert!(
                ran,
                "order {number}: {:?} committed under fence {fence} of {worker}, which has no \
                 finished execution of it",
                event.kind
            );
        }
        let (_, last) = claims.last().expect("a claim");
        assert_eq!(*last, record.fence, "order {number}: the last claim");
        if claims.len() > 1 {
            claimed_again += 1;
        }
        if claims[..claims.len() - 1]
            .iter()
            .any(|(worker, _)| killed.contains_key(worker))
        {
            taken_over_from_killed += 1;
        }

        // No two fences at once: each fence's executions, from the first start to the last
        // end (or the death of its process), come before the next fence's.
        let mut spans: BTreeMap<u64, (i64, i64, &str)> = BTreeMap::new();
        for e in runs_executions {
            let end = e.ended_at.unwrap_or_else(|| {
                *killed.get(&e.worker).unwrap_or_else(|| {
                    panic!(
                        "order {number}: an execution of {} under fence {} never ended, and \
                         its worker {} was not killed",
                        e.origin, e.fence, e.worker
                    )
                })
            });
            let span = spans
                .entry(e.fence)
                .or_insert((e.started_at, end, e.worker.as_str()));
            assert_eq!(
                span.2, e.worker,
                "order {number}: fence {} in two workers",
                e.fence
            );
            span.0 = span.0.min(e.started_at);
            span.1 = span.1.max(end);
        }
        let spans: Vec<_> = spans.into_iter().collect();
        for pair in spans.windows(2) {
            let (f1, (_, end, w1)) = pair[0];
            let (f2, (start, _, w2)) = pair[1];
            assert!(
                end <= start,
                "order {number}: fence {f1} ({w1}) executed until {end}, after fence {f2} \
                 ({w2}) started at {start}: a step or handler ran in two workers at once"
            );
        }
    }
    Checked {
        executions: execution_count,
        repeated,
        redelivered,
        claimed_again,
        taken_over_from_killed,
    }
}

pub(super) fn number(record: &hookflow::RunRecord) -> u64 {
    record.idempotency_key.as_deref().unwrap()["order-".len()..]
        .parse()
        .unwrap()
}
