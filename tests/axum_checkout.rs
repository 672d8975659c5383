//! The axum example (`examples/axum_checkout`), served on a local socket and sent real HTTP
//! requests.

#[path = "../examples/axum_checkout/app.rs"]
mod app;
#[path = "../examples/axum_checkout/plugin.rs"]
mod plugin;
#[path = "../examples/checkout/workflow.rs"]
mod workflow;

use std::net::SocketAddr;

use hookflow::prelude::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The service on a free local port, and its engine (to look at the shop and the plugin).
async fn serve() -> (SocketAddr, Engine) {
    let engine = app::engine();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app::router(engine.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, engine)
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 POST over a new connection, read to its end.
async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn a_completed_checkout_answers_the_order_with_what_the_request_carried() {
    let (addr, engine) = serve().await;
    let body = json!({ "additional_data": { "gift_card": "GIFT-10", "loyalty_member": "m_42" } });
    let reply = post(
        addr,
        "/carts/cart_ok/complete",
        &[
            ("Authorization", "Bearer usr_1"),
            ("x-request-id", "req-42"),
            JSON,
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-request-id"), Some("req-42"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let order = &reply.body["order"];
    assert_eq!(order["cart_id"], "cart_ok");
    assert_eq!(order["total"], 6200);
    // The gift card (from `additional_data`) paid $10 of it.
    assert_eq!(order["charged"].as_u64().unwrap() + 10_00, 6200 + 496);
    assert_eq!(reply.body["status"], "completed");
    assert_eq!(reply.body["hook_errors"], json!([]));
    // The loyalty plugin's hook saw the additional data, the request id and the actor.
    let ledger = engine.service::<plugin::LoyaltyLedger>().unwrap();
    let awards = ledger.awards.lock().unwrap().clone();
    assert_eq!(
        awards,
        [plugin::Award {
            member: "m_42".to_owned(),
            points: 62,
            order: order["id"].as_str().unwrap().to_owned(),
            request_id: Some("req-42".to_owned()),
            actor: Some("usr_1".to_owned()),
        }]
    );
}

#[tokio::test]
async fn a_failing_after_hook_is_reported_next_to_the_success() {
    let (addr, _) = serve().await;
    let body = json!({ "additional_data": { "loyalty_member": "nobody" } });
    let reply = post(addr, "/carts/cart_ok/complete", &[JSON], &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["hook_errors"],
        json!([{ "hook": "order_created", "handler": "award_points", "plugin": "loyalty",
                 "error": "unknown loyalty member `nobody`" }])
    );
    // No request id given: one was made, and echoed.
    assert!(reply.header("x-request-id").unwrap().starts_with("req_"));
}

#[tokio::test]
async fn a_declined_payment_is_a_problem_naming_the_step_and_the_compensation() {
    let (addr, engine) = serve().await;
    let reply = post(addr, "/carts/cart_declined/complete", &[], "").await;
    assert_eq!(reply.status, 402, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let problem = &reply.body;
    assert_eq!(problem["failed_step"], "capture_payment");
    assert_eq!(problem["failed_hook"], Value::Null);
    assert_eq!(problem["compensated"], true);
    assert_eq!(problem["status"], 402);
    assert_eq!(problem["title"], "Checkout failed");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("payment declined"),
        "{problem}"
    );
    // Compensated for real: the order was cancelled and the authorization voided.
    let shop = engine.service::<workflow::Shop>().unwrap().lock();
    assert!(
        shop.orders.values().all(|state| state == "cancelled") && !shop.orders.is_empty(),
        "{:?}",
        shop.orders
    );
    assert!(
        shop.payments
            .values()
            .all(|state| state.starts_with("voided")),
        "{:?}",
        shop.payments
    );
}

#[tokio::test]
async fn a_hook_rejection_is_unprocessable() {
    let (addr, _) = serve().await;
    let reply = post(addr, "/carts/cart_small/complete", &[], "").await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["failed_hook"], "validate");
    assert_eq!(reply.body["failed_step"], Value::Null);
    assert_eq!(reply.body["compensated"], true);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("below the minimum of $10.00"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn bad_requests_are_problems_and_run_nothing() {
    let (addr, engine) = serve().await;
    let reply = post(addr, "/carts/cart_ok/complete", &[JSON], "{oops").await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("the body is not a checkout request"),
        "{}",
        reply.body
    );
    let reply = post(
        addr,
        "/carts/cart_ok/complete",
        &[JSON],
        r#"{"additional_data": {}, "extra": 1}"#,
    )
    .await;
    assert_eq!(reply.status, 400, "unknown fields are refused");
    let reply = post(
        addr,
        "/carts/cart_ok/complete",
        &[("Authorization", "Basic dXNyOnB3")],
        "",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.body["detail"],
        "the Authorization header must be `Bearer <user id>`"
    );
    let shop = engine.service::<workflow::Shop>().unwrap().lock();
    assert!(shop.orders.is_empty() && shop.payments.is_empty());
}

#[tokio::test]
async fn a_retried_request_with_an_idempotency_key_checks_out_once() {
    let (addr, engine) = serve().await;
    let key = [("Idempotency-Key", "try-7")];
    let first = post(addr, "/carts/cart_ok/complete", &key, "").await;
    let again = post(addr, "/carts/cart_ok/complete", &key, "").await;
    assert_eq!((first.status, again.status), (200, 200), "{}", again.body);
    assert_eq!(first.body["run_id"], again.body["run_id"]);
    assert_eq!(first.body["order"], again.body["order"]);
    let shop = engine.service::<workflow::Shop>().unwrap().lock();
    assert_eq!(shop.orders.len(), 1, "{:?}", shop.orders);
}
