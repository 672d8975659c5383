//! The dashboard in a real headless browser: Debian's Chromium, driven over WebDriver
//! (chromedriver), both installed by `scripts/chromium.sh` when missing (the test fails with
//! the script's reason if it cannot). The runs page lists the checkout example's runs and the
//! status filter narrows it; a run's page draws the failed step and the compensations on its
//! SVG timeline; a `<script>` in a run's input shows as text and does not run; resume is
//! refused without the token and completes an interrupted run with it; a running run's page
//! follows the run by itself. Screenshots go to `$CARGO_TARGET_TMPDIR/dashboard-screenshots`.

mod dashboard_support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashboard_support::{SCRIPT, TOKEN, fill, interrupt, register, start};
use fantoccini::{Client, ClientBuilder, Locator};
use hookflow::store::sqlite::SqliteStore;
use hookflow::{RunId, Store, StoredStatus};
use hookflow_cli::dashboard::Dashboard;
use serde_json::json;

/// The browser and chromedriver, from `scripts/chromium.sh` (which installs them if needed).
fn chromium() -> (String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/chromium.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/chromium.sh could not provide Chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    match (lines.next(), lines.next()) {
        (Some(browser), Some(driver)) => (browser.to_owned(), driver.to_owned()),
        _ => panic!("scripts/chromium.sh printed no browser and driver: {stdout:?}"),
    }
}

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free local port and waits (up to 30 s) until it listens.
fn start_driver(driver: &str) -> (Driver, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {driver}: {e}"));
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (driver, port)
}

async fn browser(browser: &str, port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": browser,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver starts a headless Chromium session")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let path = screenshots().join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.unwrap()
}

/// Waits (up to `secs`) until `script` returns `true` in the page.
async fn until(client: &Client, secs: u64, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        // A page being reloaded can answer with an error: try again.
        if let Ok(serde_json::Value::Bool(true)) = client.execute(script, vec![]).await {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a POST from the page to `path` answers (the page's own origin, no CSRF token).
async fn post_status(client: &Client, path: &str) -> serde_json::Value {
    client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             fetch(arguments[0], {method: 'POST', body: new URLSearchParams({csrf: 'guess'})})\
               .then(r => done(r.status), e => done(String(e)));",
            vec![json!(path)],
        )
        .await
        .unwrap()
}

async fn status_of(db: &Path, run: &str) -> StoredStatus {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).unwrap());
    store
        .load(RunId::parse(run).unwrap())
        .await
        .unwrap()
        .0
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_headless_browser() {
    let (chromium_bin, driver_bin) = chromium();
    let filled = fill("dashboard-browser", "all").await;
    interrupt(&filled.db, "interrupted-live").await;
    let open = || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&filled.db).unwrap()) };
    let read_only = start(Dashboard::new(open()).workflows(register)).await;
    let acting = start(Dashboard::new(open()).token(TOKEN).workflows(register)).await;
    let (_driver, port) = start_driver(&driver_bin);
    let client = browser(&chromium_bin, port).await;
    let url = |addr: SocketAddr, path: &str| format!("http://{addr}{path}");

    // The runs page lists the example's runs (its four checkouts, the script's run and the two
    // interrupted ones).
    client.goto(&url(read_only, "/")).await.unwrap();
    let rows = client.find_all(Locator::Css("#runs tr.run")).await.unwrap();
    assert_eq!(rows.len(), 7);
    let text = client
        .find(Locator::Css("#runs"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for key in [
        "checkout-cart_ok",
        "checkout-cart_declined",
        "checkout-cart_small",
        "checkout-cart_stuck",
    ] {
        assert!(text.contains(&filled.ids[key]), "{key} listed");
    }
    screenshot(&client, "runs.png").await;

    // The status filter narrows it.
    client
        .find(Locator::Css("#status option[value='compensated']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css("#filter"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &client,
        10,
        "the filtered page",
        "return location.search.includes('status=compensated')",
    )
    .await;
    let statuses = js(
        &client,
        "return [...document.querySelectorAll('#runs tr.run')].map(r => r.dataset.status)",
    )
    .await;
    assert_eq!(
        statuses,
        json!(["compensated", "compensated", "compensated"])
    );
    screenshot(&client, "runs-compensated.png").await;

    // A run's page: the failed step and the compensations on the SVG timeline.
    let stuck = &filled.ids["checkout-cart_stuck"];
    client
        .goto(&url(read_only, &format!("/runs/{stuck}")))
        .await
        .unwrap();
    let failed = client
        .find_all(Locator::Css("svg.timeline g.bar.step.failed"))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "one failed step");
    let failed_title = js(
        &client,
        "return document.querySelector('svg.timeline g.bar.step.failed > title').textContent",
    )
    .await;
    assert!(
        failed_title.as_str().unwrap().contains("failed after"),
        "{failed_title}"
    );
    let red = js(
        &client,
        "return document.querySelector('svg.timeline g.bar.step.failed rect').getAttribute('fill')",
    )
    .await;
    assert_eq!(red, json!("#dc2626"));
    let undos = client
        .find_all(Locator::Css("svg.timeline g.bar.compensation"))
        .await
        .unwrap();
    assert!(undos.len() >= 2, "compensations drawn: {}", undos.len());
    let undo_failed = client
        .find_all(Locator::Css("svg.timeline g.bar.compensation.failed"))
        .await
        .unwrap();
    assert_eq!(undo_failed.len(), 1, "the release that failed");
    screenshot(&client, "run.png").await;

    // A `<script>` in a run's input (and so in its error) shows as text and does not run.
    let scripted = &filled.ids["script"];
    for path in [format!("/runs/{scripted}"), "/".to_owned()] {
        client.goto(&url(read_only, &path)).await.unwrap();
        let title = client.title().await.unwrap();
        assert_ne!(title, "pwned", "{path}");
        assert_eq!(
            js(&client, "return document.body.getAttribute('data-pwned')").await,
            json!(null),
            "{path}"
        );
        let shown = js(&client, "return document.querySelector('main').textContent").await;
        assert!(
            shown.as_str().unwrap().contains(SCRIPT),
            "{path}: the script shows as text"
        );
        let scripts = js(
            &client,
            "return document.querySelectorAll('main script').length",
        )
        .await;
        assert_eq!(scripts, json!(0), "{path}: no script element from a run");
    }
    screenshot(&client, "script-as-text.png").await;

    // Resume is refused without the token: the read-only dashboard has no button and refuses
    // the POST; the acting one refuses it before logging in.
    let run = filled.ids["interrupted"].clone();
    let resume = format!("/runs/{run}/resume");
    for addr in [read_only, acting] {
        client
            .goto(&url(addr, &format!("/runs/{run}")))
            .await
            .unwrap();
        assert!(
            client
                .find_all(Locator::Css("#resume"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(post_status(&client, &resume).await, json!(403));
    }
    assert_eq!(status_of(&filled.db, &run).await, StoredStatus::Running);

    // With the token: log in, press resume, and the run completes.
    client.goto(&url(acting, "/login")).await.unwrap();
    client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    client
        .find(Locator::Css("#login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&client, 10, "logged in", "return location.pathname === '/'").await;
    client
        .goto(&url(acting, &format!("/runs/{run}")))
        .await
        .unwrap();
    client
        .find(Locator::Css("#resume"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &client,
        30,
        "the resumed run's page",
        "return document.querySelector('#status')?.textContent === 'completed'",
    )
    .await;
    assert_eq!(status_of(&filled.db, &run).await, StoredStatus::Completed);
    screenshot(&client, "resumed.png").await;

    // A running run's page follows the run: resumed elsewhere, it shows completed by itself.
    let live = open()
        .find_by_idempotency_key("interrupted-live")
        .await
        .unwrap()
        .expect("the second interrupted run")
        .run_id
        .to_string();
    client
        .goto(&url(acting, &format!("/runs/{live}")))
        .await
        .unwrap();
    assert_eq!(
        js(
            &client,
            "return document.querySelector('#status').textContent"
        )
        .await,
        json!("running")
    );
    let engine = register(hookflow::Engine::builder())
        .store(SqliteStore::open(&filled.db).unwrap())
        .build();
    engine.resume(RunId::parse(&live).unwrap()).await.unwrap();
    until(
        &client,
        30,
        "the page updating itself",
        "return document.querySelector('#status')?.textContent === 'completed'",
    )
    .await;

    client.close().await.unwrap();
}
