//! Who started a run and from where, as steps, hooks and compensations see it: the actor,
//! the request id, the origin, and the run's own id.

use super::*;

#[derive(Debug, Clone, PartialEq)]
struct Sighting {
    place: &'static str,
    run_id: RunId,
    workflow: &'static str,
    request_id: Option<String>,
    actor: Option<Actor>,
    origin: Origin,
}

#[derive(Clone, Default)]
struct Sightings(Arc<Mutex<Vec<Sighting>>>);

impl Sightings {
    fn see(&self, place: &'static str, ctx: &hookflow::RunContext) {
        self.0.lock().unwrap().push(Sighting {
            place,
            run_id: ctx.run_id(),
            workflow: ctx.workflow(),
            request_id: ctx.request_id().map(str::to_owned),
            actor: ctx.actor().cloned(),
            origin: ctx.origin(),
        });
    }
    fn all(&self) -> Vec<Sighting> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Refund {
    order_id: String,
    cents: u64,
}

#[step(compensate = reverse_refund)]
async fn issue_refund(
    ctx: &StepContext,
    refund: Refund,
) -> Result<StepResponse<(), Refund>, ShopError> {
    ctx.service::<Sightings>()?.see("step", ctx);
    Ok(StepResponse::new((), refund))
}

async fn reverse_refund(ctx: &StepContext, _refund: Refund) -> Result<(), ShopError> {
    ctx.service::<Sightings>()?.see("compensation", ctx);
    Ok(())
}

/// Refunding without telling the customer needs the `refunds:silent` permission.
#[step]
async fn skip_notification(ctx: &StepContext) -> Result<(), ShopError> {
    match ctx.actor() {
        Some(actor) if actor.can("refunds:silent") => Ok(()),
        _ => Err(ShopError::Forbidden("refunds:silent")),
    }
}

#[workflow(hooks(approve: before<Refund>, refunded: after<Refund>))]
async fn refund_order(ctx: &WorkflowContext, refund: Refund) -> Result<(), ShopError> {
    let refund = ctx.hook(RefundOrder::APPROVE, refund).await?;
    issue_refund(ctx, refund.clone()).await?;
    ctx.hook(RefundOrder::REFUNDED, &refund).await;
    skip_notification(ctx).await
}

async fn approve(ctx: &HookContext, refund: Refund) -> Result<Refund, ShopError> {
    ctx.service::<Sightings>()?.see("before hook", ctx);
    Ok(refund)
}

async fn refunded(ctx: &HookContext, _refund: &Refund) -> Result<(), ShopError> {
    ctx.service::<Sightings>()?.see("after hook", ctx);
    Ok(())
}

fn refund_engine(sightings: &Sightings) -> Engine {
    let mut hooks = Hooks::new();
    RefundOrder::hooks(&mut hooks)
        .approve(approve)
        .refunded(refunded);
    Engine::builder()
        .hooks(hooks)
        .service(sightings.clone())
        .build()
}

fn refund() -> Refund {
    Refund {
        order_id: "ord_5".into(),
        cents: 900,
    }
}

#[tokio::test]
async fn actor_request_id_and_origin_are_seen_by_steps_hooks_and_compensations() {
    let sightings = Sightings::default();
    let agent = Actor::user("usr_support_1")
        .with_role("support")
        .with_permission("refunds:create");
    let options = RunOptions::new()
        .request_id("req_abc")
        .actor(agent.clone())
        .origin(Origin::Api);

    let outcome = refund_engine(&sightings)
        .run_with::<RefundOrder>(refund(), options)
        .await;

    // The agent lacks `refunds:silent`: the last step fails and the refund is reversed.
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert!(matches!(
        outcome.error(),
        Some(RunError::Failed(ShopError::Forbidden("refunds:silent")))
    ));
    let seen = sightings.all();
    let places: Vec<&str> = seen.iter().map(|s| s.place).collect();
    assert_eq!(
        places,
        ["before hook", "step", "after hook", "compensation"]
    );
    for sighting in &seen {
        assert_eq!(sighting.run_id, outcome.run_id(), "{}", sighting.place);
        assert_eq!(sighting.workflow, "refund_order", "{}", sighting.place);
        assert_eq!(
            sighting.request_id.as_deref(),
            Some("req_abc"),
            "{}",
            sighting.place
        );
        assert_eq!(sighting.actor.as_ref(), Some(&agent), "{}", sighting.place);
        assert_eq!(sighting.origin, Origin::Api, "{}", sighting.place);
    }
    let actor = seen[0].actor.as_ref().unwrap();
    assert_eq!(actor.id(), "usr_support_1");
    assert_eq!(actor.kind(), hookflow::ActorKind::User);
    assert!(actor.has_role("support"));
    assert!(actor.can("refunds:create"));
    assert!(!actor.can("refunds:silent"));
}

#[tokio::test]
async fn a_step_can_decide_on_the_actors_permissions() {
    let sightings = Sightings::default();
    let manager = Actor::api_key("key_ops").with_permission("refunds:silent");

    let outcome = refund_engine(&sightings)
        .run_with::<RefundOrder>(refund(), RunOptions::new().actor(manager))
        .await;

    assert_eq!(outcome.status(), RunStatus::Completed);
}

#[tokio::test]
async fn without_options_a_run_has_no_actor_no_request_id_and_a_local_origin() {
    let sightings = Sightings::default();
    let outcome = refund_engine(&sightings).run::<RefundOrder>(refund()).await;

    let seen = sightings.all();
    assert!(!seen.is_empty());
    for sighting in &seen {
        assert_eq!(sighting.run_id, outcome.run_id());
        assert_eq!(sighting.request_id, None);
        assert_eq!(sighting.actor, None);
        assert_eq!(sighting.origin, Origin::Local);
    }
}

#[tokio::test]
async fn every_run_has_its_own_id() {
    let engine = refund_engine(&Sightings::default());
    let first = engine.run::<RefundOrder>(refund()).await.run_id();
    let second = engine.run::<RefundOrder>(refund()).await.run_id();
    assert_ne!(first, second);
    assert!(first < second, "run ids are ordered by start time");
}
