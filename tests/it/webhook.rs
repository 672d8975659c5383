//! The webhook checkout example (`examples/webhook_checkout`) across a crash: a checkout waits
//! for `payment_captured`; its server process is SIGKILLed while it waits; another server
//! process on the same SQLite file takes the provider's webhook, and the run completes there,
//! each of the shop's effects once. The server processes are this test binary again, running
//! the ignored entry point `webhook::server_process` (the example's own code, `app.rs`).

use std::path::{Path, PathBuf};

/// A child process, killed when dropped: a failing test leaves none behind.
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::child::{Killed, start};

#[path = "../../examples/webhook_checkout/app.rs"]
#[allow(dead_code)]
mod app;

const CHILD_TEST: &str = "webhook::server_process";
const CHILD_DB: &str = "HOOKFLOW_WEBHOOK_CHILD_DB";
const CHILD_EFFECTS: &str = "HOOKFLOW_WEBHOOK_CHILD_EFFECTS";

/// A server process: serves the example's routes over the store in `HOOKFLOW_WEBHOOK_CHILD_DB`
/// on a free port, printed as `LISTENING <addr>`, until it is killed. Ignored: the test runs it
/// in processes of its own.
#[test]
#[ignore = "child process of webhook::checkout_completes_in_another_process_after_a_kill_while_it_waits, run by it"]
fn server_process() {
    let (Ok(db), Ok(effects)) = (std::env::var(CHILD_DB), std::env::var(CHILD_EFFECTS)) else {
        return; // Not a server process (`--ignored` without the parent): nothing to do.
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let service = app::service(PathBuf::from(db), PathBuf::from(effects)).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("LISTENING {}", listener.local_addr().unwrap());
            axum::serve(listener, app::router(&service)).await.unwrap();
        });
}

/// Starts a server process and returns it with its address.
fn server(db: &Path, effects: &Path) -> (Killed, String) {
    let env = [
        (CHILD_DB, db.as_os_str()),
        (CHILD_EFFECTS, effects.as_os_str()),
    ];
    start(CHILD_TEST, &env, |line| {
        line.split_once("LISTENING ")
            .map(|(_, addr)| addr.trim().to_owned())
    })
}

/// One HTTP/1.1 request; the status and the JSON body of the answer.
async fn http(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// How many times each effect was recorded.
fn count(effects: &Path, effect: &str) -> usize {
    std::fs::read_to_string(effects)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.split(' ').next() == Some(effect))
        .count()
}

#[tokio::test]
async fn checkout_completes_in_another_process_after_a_kill_while_it_waits() {
    let dir = std::env::temp_dir().join(format!("hookflow-webhook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (db, effects) = (dir.join("shop.db"), dir.join("effects"));

    let (mut first, addr) = server(&db, &effects);
    let order = json!({ "order": "o1", "total": 4200 });
    let (status, started) = http(&addr, "POST", "/checkouts", Some(order)).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["status"], "waiting");
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    assert_eq!(count(&effects, "authorize"), 1);

    // The process dies while the run waits for the payment provider.
    first.0.kill().unwrap();
    first.0.wait().unwrap();

    let (mut second, addr) = server(&db, &effects);
    let (status, shown) = http(&addr, "GET", &format!("/checkouts/{run_id}"), None).await;
    assert_eq!((status, shown["status"].as_str()), (200, Some("waiting")));
    let hook = json!({ "run_id": run_id, "payment_id": "pay_1", "amount": 4200 });
    let (status, delivered) = http(&addr, "POST", "/webhooks/payment", Some(hook.clone())).await;
    assert_eq!(status, 202, "{delivered}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let (_, shown) = http(&addr, "GET", &format!("/checkouts/{run_id}"), None).await;
        if shown["status"] == "completed" {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not complete: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        shown["output"],
        "order o1 paid (4200 cents, pay_1) and shipped"
    );
    // The provider retries its webhook: taken once.
    let (status, again) = http(&addr, "POST", "/webhooks/payment", Some(hook)).await;
    assert_eq!((status, &again["delivered"]), (200, &json!("duplicate")));
    second.0.kill().unwrap();
    second.0.wait().unwrap();

    assert_eq!(count(&effects, "authorize"), 1, "authorized once");
    assert_eq!(count(&effects, "fulfil"), 1, "fulfilled once");
    assert_eq!(count(&effects, "void"), 0, "never voided");
    let _ = std::fs::remove_dir_all(dir);
}
