//! The axum example (examples/axum_checkout): its router, served on a real socket, answers
//! real HTTP/1.1 requests. The actor, the request id and the additional data reach the
//! workflow's hooks; a failed run is an RFC 9457 problem naming the failed step or the
//! rejecting hook, with what was undone. Every other error is a problem too (405, 413, 415,
//! 400 for invalid JSON or a cart id that is not UTF-8, 422), and the store keeps only the
//! runs started with an idempotency key.

#[path = "../../../examples/axum_checkout/app.rs"]
mod app;
mod http;
#[path = "../../../examples/axum_checkout/plugin.rs"]
mod plugin;
#[path = "../../../examples/axum_checkout/problem.rs"]
mod problem;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::workflow::{self, Shop};
use hookflow::MemoryStore;
use hookflow::prelude::*;
use http::{post, send};
use plugin::{Credit, LoyaltyPlugin, LoyaltyProgram};
use serde_json::{Value, json};

/// The engine as `main.rs` builds it (without its stock top-up).
fn engine() -> Engine {
    engine_and_store().0
}

/// The engine, and the store it keeps its runs in (`app::store()`, as in `main.rs`).
fn engine_and_store() -> (Engine, Arc<MemoryStore>) {
    let mut hooks = workflow::hooks();
    hooks.plugin(LoyaltyPlugin);
    let store = Arc::new(app::store());
    let engine = Engine::builder()
        .hooks(hooks)
        .service(workflow::shop())
        .service(LoyaltyProgram::demo())
        .store(Arc::clone(&store))
        .build();
    (engine, store)
}

/// Serves the example's router on 127.0.0.1, on a free port.
async fn serve(engine: &Engine) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app::router(engine.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn credits(engine: &Engine) -> Vec<Credit> {
    engine
        .service::<LoyaltyProgram>()
        .unwrap()
        .lock()
        .credits
        .clone()
}

fn json_body(additional_data: Value) -> String {
    json!({ "additional_data": additional_data }).to_string()
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn a_checkout_answers_the_order_and_the_workflow_sees_the_request_id_and_actor() {
    let engine = engine();
    let addr = serve(&engine).await;
    let reply = post(
        addr,
        "/carts/cart_ok/complete",
        &[
            ("Authorization", "Bearer usr_1"),
            ("x-request-id", "req-test-1"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-request-id"), Some("req-test-1"));
    let body = reply.json();
    assert_eq!(body["status"], "completed");
    assert_eq!(body["request_id"], "req-test-1");
    assert_eq!(body["order"]["cart_id"], "cart_ok");
    assert_eq!(body["order"]["total"], 62_00);
    assert_eq!(body["order"]["tax"], 4_96);
    assert_eq!(body["order"]["charged"], 66_96);
    assert_eq!(body["hook_errors"], json!([]));
    let order_id = body["order"]["id"].as_str().unwrap();
    let run_id = body["run_id"].as_str().unwrap();
    assert!(hookflow::RunId::parse(run_id).is_ok());

    // The loyalty plugin's `order_created` handler saw the run's request id and actor, and
    // credited the signed-in customer's account.
    assert_eq!(
        credits(&engine),
        [Credit {
            account: "acct_ada".into(),
            order_id: order_id.into(),
            points: 66,
            run_id: run_id.into(),
            request_id: Some("req-test-1".into()),
            actor: Some("usr_1".into()),
        }]
    );
    let shop = engine.service::<Shop>().unwrap();
    assert_eq!(
        shop.lock().orders.get(order_id).map(String::as_str),
        Some("placed")
    );
}

#[tokio::test]
async fn a_request_without_an_id_gets_one_made_and_echoed() {
    let engine = engine();
    let addr = serve(&engine).await;
    let first = post(addr, "/carts/cart_ok/complete", &[], "").await;
    let second = post(addr, "/carts/cart_ok/complete", &[], "").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let id = first.header("x-request-id").unwrap();
    assert!(id.starts_with("req_"), "{id}");
    assert_eq!(first.json()["request_id"], id);
    assert_ne!(
        second.header("x-request-id"),
        Some(id),
        "a new id per request"
    );

    // An unusable one is refused, with a new id.
    let long = "x".repeat(201);
    let reply = post(
        addr,
        "/carts/cart_ok/complete",
        &[("x-request-id", &long)],
        "",
    )
    .await;
    let problem = reply.problem(400);
    assert_eq!(
        problem["type"],
        format!("{}invalid-request-id", problem::PROBLEM_TYPES)
    );
    assert_ne!(reply.header("x-request-id"), Some(long.as_str()));
}

#[tokio::test]
async fn the_additional_data_reaches_the_hooks() {
    let engine = engine();
    let addr = serve(&engine).await;
    let body = json_body(json!({ "gift_card": "GIFT-10", "loyalty_card": "LC-1001" }));
    let reply = post(addr, "/carts/cart_ok/complete", &[JSON], &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let order = &reply.json()["order"];
    // The gift-card plugin took $10 off the amount charged...
    assert_eq!(order["charged"], 66_96 - 10_00);
    // ...and the loyalty plugin credited the card's account, for a guest (no actor).
    let credits = credits(&engine);
    assert_eq!(credits.len(), 1);
    assert_eq!(credits[0].account, "acct_ada");
    assert_eq!(credits[0].points, 56);
    assert_eq!(credits[0].actor, None);
}

#[tokio::test]
async fn the_actor_comes_from_the_authorization_header() {
    let engine = engine();
    let addr = serve(&engine).await;
    // An API key is an actor, but not a customer: it earns no points.
    let reply = post(
        addr,
        "/carts/cart_ok/complete",
        &[("authorization", "bearer sk_pos_1")],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(credits(&engine), []);
    // usr_2 owns the frozen account acct_bob.
    let reply = post(
        addr,
        "/carts/cart_ok/complete",
        &[("Authorization", "Bearer usr_2")],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let errors = reply.json()["hook_errors"].clone();
    assert_eq!(errors[0]["error"], "loyalty account acct_bob is frozen");
}

#[tokio::test]
async fn a_failed_after_hook_is_reported_alongside_the_order() {
    let engine = engine();
    let addr = serve(&engine).await;
    let body = json_body(json!({ "loyalty_card": "LC-2002" }));
    let reply = post(addr, "/carts/cart_ok/complete", &[JSON], &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["status"], "completed");
    assert!(body["order"]["id"].is_string());
    assert_eq!(
        body["hook_errors"],
        json!([{
            "hook": "order_created",
            "handler": "award_points",
            "slot": "configured",
            "plugin": "loyalty",
            "error": "loyalty account acct_bob is frozen",
        }])
    );
    assert_eq!(credits(&engine), []);
}

#[tokio::test]
async fn a_declined_payment_names_the_failed_step_and_the_undone_steps() {
    let engine = engine();
    let addr = serve(&engine).await;
    let reply = post(
        addr,
        "/carts/cart_declined/complete",
        &[
            ("Authorization", "Bearer usr_1"),
            ("x-request-id", "req-declined"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.header("x-request-id"), Some("req-declined"));
    let problem = reply.problem(402);
    assert_eq!(
        problem["type"],
        format!("{}payment-declined", problem::PROBLEM_TYPES)
    );
    assert_eq!(problem["instance"], "/carts/cart_declined/complete");
    assert_eq!(problem["failed_step"], "capture_payment");
    assert_eq!(problem["compensated"], true);
    assert_eq!(problem["workflow_status"], "compensated");
    assert_eq!(
        problem["compensated_steps"],
        json!([
            "reserve_inventory",
            "reserve_inventory",
            "create_order",
            "authorize_payment"
        ])
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("refused by the card issuer")
    );
    assert!(problem.get("rejected_by").is_none());
    // The order was cancelled and no points credited.
    let shop = engine.service::<Shop>().unwrap();
    assert!(
        shop.lock()
            .orders
            .values()
            .all(|status| status == "cancelled")
    );
    assert_eq!(credits(&engine), []);
}

#[tokio::test]
async fn a_failed_compensation_is_a_500_that_says_what_was_not_undone() {
    let engine = engine();
    engine
        .service::<Shop>()
        .unwrap()
        .lock()
        .warehouse_down_on_release = Some("west".into());
    let addr = serve(&engine).await;
    let reply = post(addr, "/carts/cart_stuck/complete", &[], "").await;
    let problem = reply.problem(500);
    assert_eq!(
        problem["type"],
        format!("{}compensation-failed", problem::PROBLEM_TYPES)
    );
    assert_eq!(problem["failed_step"], "capture_payment");
    assert_eq!(problem["compensated"], false);
    assert_eq!(problem["workflow_status"], "compensation_failed");
    let failures = problem["compensation_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["step"], "reserve_inventory");
}

#[tokio::test]
async fn an_unknown_cart_is_a_404_naming_the_step_that_looked() {
    let engine = engine();
    let addr = serve(&engine).await;
    let problem = post(addr, "/carts/cart_nope/complete", &[], "")
        .await
        .problem(404);
    assert_eq!(
        problem["type"],
        format!("{}cart-not-found", problem::PROBLEM_TYPES)
    );
    assert_eq!(problem["failed_step"], "load_cart");
    assert_eq!(problem["compensated_steps"], json!([]));
}

#[tokio::test]
async fn a_hook_rejection_is_a_422_naming_the_hook_and_its_plugin() {
    let engine = engine();
    let addr = serve(&engine).await;
    // The application's `validate` handler: below the minimum amount.
    let problem = post(addr, "/carts/cart_small/complete", &[], "")
        .await
        .problem(422);
    assert_eq!(
        problem["type"],
        format!("{}rejected-by-hook", problem::PROBLEM_TYPES)
    );
    assert_eq!(
        problem["rejected_by"],
        json!({
            "hook": "validate",
            "handler": "validate_minimum_amount",
            "slot": "configured",
            "plugin": null,
        })
    );
    assert_eq!(problem["failed_step"], Value::Null);
    assert_eq!(problem["compensated"], true);
    assert_eq!(
        problem["detail"],
        "order total $5.00 is below the minimum of $10.00"
    );

    // The loyalty plugin's: an unknown card.
    let body = json_body(json!({ "loyalty_card": "LC-9999" }));
    let problem = post(addr, "/carts/cart_ok/complete", &[JSON], &body)
        .await
        .problem(422);
    assert_eq!(problem["rejected_by"]["handler"], "check_loyalty_card");
    assert_eq!(problem["rejected_by"]["plugin"], "loyalty");
    assert_eq!(problem["detail"], "unknown loyalty card LC-9999");

    // Additional data of the wrong shape, rejected by the plugin with the field's path.
    let body = json_body(json!({ "loyalty_card": 5 }));
    let problem = post(addr, "/carts/cart_ok/complete", &[JSON], &body)
        .await
        .problem(422);
    assert_eq!(problem["rejected_by"]["plugin"], "loyalty");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("`loyalty_card`"),
        "{}",
        problem["detail"]
    );
    // Nothing was paid for any of them.
    let shop = engine.service::<Shop>().unwrap();
    assert!(shop.lock().payments.is_empty());
}

#[tokio::test]
async fn a_malformed_body_is_a_problem_and_the_service_goes_on() {
    let engine = engine();
    let addr = serve(&engine).await;
    let path = "/carts/cart_ok/complete";
    let problem = post(addr, path, &[JSON], "{\"additional_data\": ")
        .await
        .problem(400);
    assert_eq!(
        problem["type"],
        format!("{}malformed-body", problem::PROBLEM_TYPES)
    );
    for body in [
        r#"{"additional_data": 5}"#,
        r#"{"additional_data": {}, "extra": 1}"#,
        "[]",
    ] {
        let problem = post(addr, path, &[JSON], body).await.problem(422);
        assert_eq!(
            problem["type"],
            format!("{}invalid-body", problem::PROBLEM_TYPES)
        );
    }
    let problem = post(addr, path, &[("content-type", "text/plain")], "{}")
        .await
        .problem(415);
    assert_eq!(problem["instance"], path);
    // A body without a content type is not taken for JSON.
    post(addr, path, &[], "{}").await.problem(415);
    // Not UTF-8, so not JSON: a 400 problem.
    let problem = send(
        addr,
        "POST",
        path,
        &[JSON],
        b"{\"additional_data\": \"\xff\"}",
    )
    .await
    .problem(400);
    assert_eq!(
        problem["type"],
        format!("{}malformed-body", problem::PROBLEM_TYPES)
    );
    // None of them ran the workflow; a good request still works.
    assert!(engine.service::<Shop>().unwrap().lock().orders.is_empty());
    let reply = post(addr, path, &[JSON], r#"{"additional_data": null}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn a_malformed_authorization_header_is_a_401() {
    let engine = engine();
    let addr = serve(&engine).await;
    for value in [
        "Basic dXNyXzE6cHc=",
        "Bearer",
        "Bearer ",
        "Bearer usr_",
        "Bearer adm_1",
        "Bearer usr_1 2",
    ] {
        let reply = post(
            addr,
            "/carts/cart_ok/complete",
            &[("Authorization", value)],
            "",
        )
        .await;
        let problem = reply.problem(401);
        assert_eq!(
            problem["type"],
            format!("{}unauthorized", problem::PROBLEM_TYPES)
        );
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{value}");
    }
    assert!(engine.service::<Shop>().unwrap().lock().orders.is_empty());
}

#[tokio::test]
async fn an_idempotency_key_replays_the_recorded_outcome() {
    let engine = engine();
    let addr = serve(&engine).await;
    let path = "/carts/cart_ok/complete";
    let key = ("Idempotency-Key", "key-1");
    let first = post(addr, path, &[key], "").await;
    let again = post(addr, path, &[key], "").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let (first, again) = (first.json(), again.json());
    assert_eq!(again["run_id"], first["run_id"]);
    assert_eq!(again["order"], first["order"]);
    // Another key is another checkout.
    let other = post(addr, path, &[("Idempotency-Key", "key-2")], "").await;
    assert_ne!(other.json()["order"]["id"], first["order"]["id"]);
    assert_eq!(engine.service::<Shop>().unwrap().lock().orders.len(), 2);

    // A failed run replays as a problem that still names the failed step.
    let path = "/carts/cart_declined/complete";
    let first = post(addr, path, &[key], "").await.problem(402);
    let reply = post(addr, path, &[key], "").await;
    assert_eq!(reply.header("idempotent-replayed"), Some("true"));
    let again = reply.problem(409);
    assert_eq!(again["run_id"], first["run_id"]);
    assert_eq!(again["failed_step"], "capture_payment");
    assert_eq!(again["compensated"], true);
}

#[tokio::test]
async fn another_method_is_a_405_problem_that_says_which_one_is_allowed() {
    let engine = engine();
    let addr = serve(&engine).await;
    let path = "/carts/cart_ok/complete";
    for method in ["GET", "PUT", "DELETE"] {
        let reply = send(addr, method, path, &[("x-request-id", "req-405")], b"").await;
        let problem = reply.problem(405);
        assert_eq!(reply.header("allow"), Some("POST"), "{method}");
        assert_eq!(
            problem["type"],
            format!("{}method-not-allowed", problem::PROBLEM_TYPES)
        );
        assert_eq!(problem["instance"], path);
        assert_eq!(problem["request_id"], "req-405");
        assert!(
            problem["detail"].as_str().unwrap().contains(method),
            "{problem}"
        );
    }
    // An unknown path is still a 404 problem, whatever the method.
    let reply = send(addr, "GET", "/carts", &[], b"").await;
    reply.problem(404);
    assert!(engine.service::<Shop>().unwrap().lock().orders.is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem() {
    let engine = engine();
    let addr = serve(&engine).await;
    let path = "/carts/cart_ok/complete";
    let padding = "x".repeat(app::BODY_LIMIT);
    let body = json_body(json!({ "note": padding }));
    assert!(body.len() > app::BODY_LIMIT);
    let problem = post(addr, path, &[JSON], &body).await.problem(413);
    assert_eq!(
        problem["type"],
        format!("{}body-too-large", problem::PROBLEM_TYPES)
    );
    assert_eq!(problem["instance"], path);
    // At the limit, the body is read (and this one is a checkout).
    let body = json_body(json!({ "note": "x".repeat(app::BODY_LIMIT - 40) }));
    assert!(body.len() <= app::BODY_LIMIT, "{}", body.len());
    let reply = post(addr, path, &[JSON], &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(engine.service::<Shop>().unwrap().lock().orders.len(), 1);
}

#[tokio::test]
async fn a_cart_id_that_is_not_utf8_is_a_400_problem() {
    let engine = engine();
    let addr = serve(&engine).await;
    let path = "/carts/cart_%FF/complete";
    let problem = post(addr, path, &[], "").await.problem(400);
    assert_eq!(
        problem["type"],
        format!("{}invalid-path", problem::PROBLEM_TYPES)
    );
    assert_eq!(problem["instance"], path);
    assert!(
        problem["detail"].as_str().unwrap().contains("UTF-8"),
        "{problem}"
    );
    // Percent-encoded UTF-8 is a cart id like any other.
    let problem = post(addr, "/carts/caf%C3%A9/complete", &[], "")
        .await
        .problem(404);
    assert!(
        problem["detail"].as_str().unwrap().contains("café"),
        "{problem}"
    );
}

#[tokio::test]
async fn the_store_keeps_only_checkouts_with_an_idempotency_key() {
    let (engine, store) = engine_and_store();
    let addr = serve(&engine).await;
    for cart in ["cart_ok", "cart_declined", "cart_nope"] {
        post(addr, &format!("/carts/{cart}/complete"), &[], "").await;
    }
    assert_eq!(
        store.len(),
        0,
        "runs without an idempotency key are not kept"
    );
    let path = "/carts/cart_ok/complete";
    let first = post(addr, path, &[("Idempotency-Key", "k-1")], "").await;
    assert_eq!(store.len(), 1);
    let again = post(addr, path, &[("Idempotency-Key", "k-1")], "").await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["run_id"], first.json()["run_id"]);
    assert_eq!(store.len(), 1);
}
