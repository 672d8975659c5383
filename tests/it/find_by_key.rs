//! `Store::find_by_idempotency_key`: the run holding a key, or none; on every store (the SQL
//! stores through the key's unique index, the memory store by the default).

use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::{RunStatus, StoredStatus};

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[step]
async fn note(_ctx: &StepContext, text: String) -> Result<usize, Never> {
    Ok(text.len())
}

#[workflow]
async fn keyed(ctx: &WorkflowContext, text: String) -> Result<usize, Never> {
    note(ctx, text).await
}

async fn finds_the_run_holding_a_key<S: Store>(store: Arc<S>) {
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Keyed>()
        .build();
    let mut ids = Vec::new();
    for key in ["order-1", "order-2", "<odd> 'key' \"quoted\""] {
        let outcome = engine
            .run_with::<Keyed>(key.to_owned(), RunOptions::new().idempotency_key(key))
            .await;
        assert_eq!(outcome.status(), RunStatus::Completed);
        ids.push((key, outcome.run_id()));
    }
    // A run without a key is never found by one.
    engine.run::<Keyed>("no key".into()).await;
    for (key, run_id) in ids {
        let found = store.find_by_idempotency_key(key).await.unwrap();
        let found = found.unwrap_or_else(|| panic!("no run found by key {key:?}"));
        assert_eq!(found.run_id, run_id);
        assert_eq!(found.idempotency_key.as_deref(), Some(key));
        assert_eq!(found.status, StoredStatus::Completed);
    }
    for missing in ["order-3", "", "order-1 ", "ORDER-1"] {
        assert!(
            store
                .find_by_idempotency_key(missing)
                .await
                .unwrap()
                .is_none(),
            "{missing:?}"
        );
    }
}

on_every_store!(
    #[tokio::test]
    finds_the_run_holding_a_key
);
