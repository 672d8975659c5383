//! What the dashboard's tests share: a SQLite store filled with the checkout example's four
//! runs, one run interrupted mid-way and one whose input holds a `<script>`; a dashboard
//! served on a free local port; a plain HTTP/1.1 client.

#![allow(dead_code)] // each test crate uses its own part

#[path = "../../../examples/checkout/workflow/mod.rs"]
pub mod workflow;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{EngineBuilder, Store};
use hookflow_cli::dashboard::Dashboard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use workflow::{Checkout, CheckoutInput};

/// What a `<script>` in a run's input would do if it ran: the page's title and an
/// attribute on `<body>`.
pub const SCRIPT: &str =
    "<script>document.title='pwned';document.body.setAttribute('data-pwned','yes')</script>";

/// The token of the dashboards that act.
pub const TOKEN: &str = "open-sesame-42";

/// Registers the checkout workflow as an admin binary does (the same worker id as the engine
/// that filled the store, so that it takes the interrupted run's lease over at once).
pub fn register(builder: EngineBuilder) -> EngineBuilder {
    builder
        .worker_id("dashboard-test")
        .hooks(workflow::hooks())
        .service(workflow::shop())
        .record_data(true)
        .workflow::<Checkout>()
}

/// A filled store: its file, and the run ids by idempotency key (`checkout-cart_ok`,
/// `checkout-cart_declined`, `checkout-cart_small`, `checkout-cart_stuck`, `interrupted`,
/// `script`).
pub struct Filled {
    pub db: PathBuf,
    pub ids: HashMap<String, String>,
}

/// A store filled like `cargo run --example checkout -- --db FILE`, plus an interrupted run and
/// a run whose cart id is [`SCRIPT`].
pub async fn fill(suite: &str, name: &str) -> Filled {
    let dir = std::env::temp_dir().join(format!(
        "hookflow-cli-{suite}-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("checkout.db");
    let engine = register(Engine::builder())
        .store(SqliteStore::open(&db).unwrap())
        .build();
    let shop = engine.service::<workflow::Shop>().unwrap();
    {
        let mut state = shop.lock();
        state.provider_unavailable_for = 1;
        state.mail_down = true;
    }
    let run = |cart: &'static str, key: String| {
        let engine = engine.clone();
        async move {
            let options = RunOptions::new()
                .idempotency_key(key)
                .request_id(format!("req-{cart}"))
                .actor(Actor::user("usr_1").with_role("customer"));
            let input = CheckoutInput {
                cart_id: cart.into(),
            };
            engine.run_with::<Checkout>(input, options).await.status()
        }
    };
    let key = |cart: &str| format!("checkout-{cart}");
    assert_eq!(run("cart_ok", key("cart_ok")).await, RunStatus::Completed);
    shop.lock().mail_down = false;
    assert_eq!(
        run("cart_declined", key("cart_declined")).await,
        RunStatus::Compensated
    );
    assert_eq!(
        run("cart_small", key("cart_small")).await,
        RunStatus::Compensated
    );
    shop.lock().warehouse_down_on_release = Some("west".into());
    assert_eq!(
        run("cart_stuck", key("cart_stuck")).await,
        RunStatus::CompensationFailed
    );
    shop.lock().warehouse_down_on_release = None;
    // A cart id that is markup: the run fails at once (no such cart), its input and error
    // holding the script.
    let scripted = run(SCRIPT, "script".into()).await;
    assert_ne!(scripted, RunStatus::Completed);
    drop(engine);
    interrupt(&db, "interrupted").await;

    let store = SqliteStore::open(&db).unwrap();
    let ids = store
        .list(None, None, 100)
        .await
        .unwrap()
        .runs
        .into_iter()
        .map(|r| (r.idempotency_key.unwrap(), r.run_id.to_string()))
        .collect();
    Filled { db, ids }
}

/// Adds to the store at `db` a run (idempotency key `key`) whose process stops while the tax
/// service is slow: it stays `running`, its lease held by the worker [`register`] names.
pub async fn interrupt(db: &std::path::Path, key: &str) {
    let engine = register(Engine::builder())
        .store(SqliteStore::open(db).unwrap())
        .build();
    let shop = engine.service::<workflow::Shop>().unwrap();
    shop.lock().tax_service_delay_secs = 30;
    let interrupted = tokio::time::timeout(
        Duration::from_millis(500),
        engine.run_with::<Checkout>(
            CheckoutInput {
                cart_id: "cart_ok".into(),
            },
            RunOptions::new().idempotency_key(key),
        ),
    )
    .await;
    assert!(interrupted.is_err(), "the run was cut off mid-way");
}

/// Serves `dashboard` on a free port of 127.0.0.1, in this runtime; its address.
pub async fn start(dashboard: Dashboard) -> SocketAddr {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let served = hookflow_cli::dashboard::serve(
            dashboard.router(),
            "127.0.0.1:0".parse().unwrap(),
            move |addr| {
                let _ = tx.send(addr);
            },
        )
        .await;
        if let Err(err) = served {
            panic!("the dashboard stopped: {err}");
        }
    });
    rx.await.unwrap()
}

/// An HTTP response: status, headers (names lowercase), body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request (`Connection: close`) to `addr` and reads the whole answer.
/// `headers` are added as given; a body is sent as a form.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the dashboard answered within 30 s")
        .unwrap();
    parse(&String::from_utf8(raw).unwrap())
}

/// Reads an HTTP/1.1 answer (a body of known length or chunked).
pub fn parse(raw: &str) -> Reply {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            out.push_str(&rest[..size.min(rest.len())]);
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The value of the session cookie a login answer sets.
pub fn session_cookie(reply: &Reply) -> Option<String> {
    let set = reply.header("set-cookie")?;
    Some(set.split(';').next()?.to_owned())
}

/// The CSRF token in a page's action form.
pub fn csrf_in(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(page[at..].split('"').next()?.to_owned())
}
