//! `parallel!` branches replay as they were recorded, whatever order their steps start in on
//! resume: a step is known by its branch and its place in it (its key), not by when it
//! started. The first execution starts branch `b`'s steps first; the resumed one starts
//! branch `a`'s first. A "crash" is the run's future dropped while a step hangs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::store::{MemoryStore, Store, StoredStatus};
use hookflow::{EventKind, RunId, parallel};

/// What the steps did, and which branch waits before its first step.
#[derive(Default)]
struct Lab {
    /// Each step execution: its label and its idempotency key.
    ran: Mutex<Vec<(String, String)>>,
    /// The branch that lets the other go first.
    slow: Mutex<&'static str>,
    /// The label of the step that hangs (the "crash" point).
    hang: Mutex<Option<&'static str>>,
    hung: tokio::sync::Notify,
    /// Runs of the `picked` handler.
    picked: AtomicUsize,
}

impl Lab {
    /// Lets the other branch start its steps first, if `branch` is the slow one.
    async fn gate(&self, branch: &str) {
        if *self.slow.lock().unwrap() == branch {
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        }
    }

    fn runs(&self, label: &str) -> Vec<String> {
        let ran = self.ran.lock().unwrap();
        ran.iter()
            .filter(|(l, _)| l == label)
            .map(|(_, key)| key.clone())
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
enum LabError {
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[step]
async fn pick(ctx: &StepContext, label: String) -> Result<String, LabError> {
    let lab = ctx.service::<Arc<Lab>>()?;
    lab.ran
        .lock()
        .unwrap()
        .push((label.clone(), ctx.idempotency_key()));
    let hang = *lab.hang.lock().unwrap() == Some(label.as_str());
    if hang {
        lab.hung.notify_one();
        std::future::pending::<()>().await;
    }
    Ok(label)
}

#[workflow(hooks(picked: after<String>))]
async fn fulfil(ctx: &WorkflowContext, order: u64) -> Result<String, LabError> {
    let lab = ctx.service::<Arc<Lab>>()?;
    let (a, b) = parallel!(
        async {
            lab.gate("a").await;
            let first = pick(ctx, "a1".into()).await?;
            let (n1, n2) = parallel!(pick(ctx, "n1".into()), pick(ctx, "n2".into()))?;
            let last = pick(ctx, "a3".into()).await?;
            Ok::<_, LabError>(format!("{first}+{n1}+{n2}+{last}"))
        },
        async {
            lab.gate("b").await;
            let first = pick(ctx, "b1".into()).await?;
            ctx.hook(Fulfil::PICKED, &first).await;
            let second = pick(ctx, "b2".into()).await?;
            Ok::<_, LabError>(format!("{first}+{second}"))
        },
    )?;
    let done = pick(ctx, format!("done{order}")).await?;
    Ok(format!("{a} | {b} | {done}"))
}

async fn picked(ctx: &HookContext, _label: &String) -> Result<(), LabError> {
    ctx.service::<Arc<Lab>>()?
        .picked
        .fetch_add(1, Ordering::SeqCst);
    Ok(())
}

fn engine(store: &Arc<MemoryStore>, lab: &Arc<Lab>) -> Engine {
    let mut hooks = Hooks::new();
    Fulfil::hooks(&mut hooks).picked(picked);
    Engine::builder()
        .worker_id("lab")
        .store(Arc::clone(store))
        .hooks(hooks)
        .service(Arc::clone(lab))
        .workflow::<Fulfil>()
        .build()
}

#[tokio::test]
async fn branches_replay_by_their_place_whatever_order_they_start_in() {
    let store = Arc::new(MemoryStore::default());
    let lab = Arc::new(Lab::default());

    // First execution: branch `a` lets `b` go first; it hangs in `a3`, after both nested
    // branches and all of `b` completed.
    *lab.slow.lock().unwrap() = "a";
    *lab.hang.lock().unwrap() = Some("a3");
    let run_id = RunId::generate();
    let first = engine(&store, &lab);
    let run = first.run_with::<Fulfil>(7, RunOptions::new().run_id(run_id));
    tokio::select! {
        _ = run => panic!("the run should hang in a3"),
        () = lab.hung.notified() => {}
    }
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Running);
    let started: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepStarted { position, .. } => Some(position.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        started.len(),
        5,
        "b1, b2, a1, n1, n2 committed: {started:?}"
    );
    let order: Vec<String> = lab
        .ran
        .lock()
        .unwrap()
        .iter()
        .map(|(l, _)| l.clone())
        .collect();
    assert_eq!(order[..2], ["b1", "b2"], "branch b started first");

    // Resumed by a new engine, with the branches' speeds the other way round: `a`'s steps
    // now start before `b`'s.
    *lab.slow.lock().unwrap() = "b";
    *lab.hang.lock().unwrap() = None;
    let resumed = engine(&store, &lab);
    let report = resumed.resume_pending().await.unwrap();
    assert_eq!(
        report.resumed,
        [(run_id, RunStatus::Completed)],
        "{report:?}"
    );
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(
        record.output,
        Some(serde_json::json!("a1+n1+n2+a3 | b1+b2 | done7"))
    );

    // Every completed step ran once; the one in flight ran again under the same key.
    for label in ["a1", "n1", "n2", "b1", "b2", "done7"] {
        assert_eq!(
            lab.runs(label).len(),
            1,
            "{label} ran {:?}",
            lab.runs(label)
        );
    }
    let a3 = lab.runs("a3");
    assert_eq!(a3.len(), 2, "{a3:?}");
    assert_eq!(a3[0], a3[1], "the step in flight keeps its idempotency key");
    // The handler fired inside branch `b` did not run again.
    assert_eq!(lab.picked.load(Ordering::SeqCst), 1);

    // Keys name the place in the code: group 0, branch 0 (`a`), its second step; the nested
    // group's branches; the body's first step outside the group.
    let key = |label: &str| lab.runs(label)[0].clone();
    assert_eq!(a3[0], format!("{run_id}:p0.0/1:pick"));
    assert_eq!(key("n2"), format!("{run_id}:p0.0/p0.1/0:pick"));
    assert_eq!(key("b2"), format!("{run_id}:p0.1/1:pick"));
    assert_eq!(key("done7"), format!("{run_id}:0:pick"));
}

#[tokio::test]
async fn in_memory_runs_key_branch_steps_the_same_way() {
    // Without a store nothing is replayed, but steps get the same keys.
    let lab = Arc::new(Lab::default());
    *lab.slow.lock().unwrap() = "a";
    let mut hooks = Hooks::new();
    Fulfil::hooks(&mut hooks).picked(picked);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(Arc::clone(&lab))
        .build();
    let outcome = engine.run::<Fulfil>(1).await;
    assert!(outcome.is_completed(), "{:?}", outcome.error());
    let run_id = outcome.run_id();
    assert_eq!(lab.runs("a1")[0], format!("{run_id}:p0.0/0:pick"));
    assert_eq!(lab.runs("n1")[0], format!("{run_id}:p0.0/p0.0/0:pick"));
    assert_eq!(lab.runs("b1")[0], format!("{run_id}:p0.1/0:pick"));
}
