//! The dashboard over HTTP (no browser): the runs page lists, filters, pages and searches the
//! checkout example's runs; a run's page shows its record, its SVG timeline and its data,
//! escaped; the actions need the token, a session, its CSRF token and the dashboard's own
//! origin; `/metrics`; the live stream; `hookflow serve` itself.

mod dashboard_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashboard_support::{
    Filled, SCRIPT, TOKEN, csrf_in, fill, http, register, session_cookie, start,
};
use hookflow::store::sqlite::SqliteStore;
use hookflow::{RunId, Store, StoredStatus};
use hookflow_cli::dashboard::Dashboard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn store(filled: &Filled) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&filled.db).unwrap())
}

/// How many rows of the runs table the page has, and with which statuses.
fn statuses(page: &str) -> Vec<String> {
    page.split("<tr class=\"run\" data-status=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_page_lists_filters_pages_and_searches() {
    let filled = fill("dashboard", "runs").await;
    let addr = start(Dashboard::new(store(&filled)).page_size(4)).await;

    let all = http(addr, "GET", "/", &[], None).await;
    assert_eq!(all.status, 200);
    assert_eq!(statuses(&all.body).len(), 4, "a page of 4");
    // Keyset pages: the next page's link holds the cursor; every run shows once.
    let next = all
        .body
        .split("id=\"next\" href=\"")
        .nth(1)
        .expect("a next page");
    let next = next.split('"').next().unwrap().replace("&amp;", "&");
    assert!(next.contains("after="), "{next}");
    let second = http(addr, "GET", &next, &[], None).await;
    assert_eq!(statuses(&second.body).len(), 2);
    assert!(!second.body.contains("id=\"next\""));
    for id in filled.ids.values() {
        let shown = [&all.body, &second.body]
            .iter()
            .filter(|b| b.contains(&format!("/runs/{id}\"")))
            .count();
        assert_eq!(shown, 1, "run {id} is on exactly one page");
    }

    let compensated = http(
        addr,
        "GET",
        "/?status=compensated&workflow=checkout",
        &[],
        None,
    )
    .await;
    // Two of the example's checkouts, and the run of the cart that does not exist.
    assert_eq!(statuses(&compensated.body), ["compensated"; 3]);
    let failed = http(addr, "GET", "/?status=compensation_failed", &[], None).await;
    assert_eq!(statuses(&failed.body), ["compensation_failed"]);
    let other = http(addr, "GET", "/?workflow=shipping", &[], None).await;
    assert!(statuses(&other.body).is_empty());
    assert!(other.body.contains("No runs."));
    let bad = http(addr, "GET", "/?status=sleeping", &[], None).await;
    assert_eq!(bad.status, 400);

    // Search: a run id or an idempotency key goes to the run's page.
    let stuck = &filled.ids["checkout-cart_stuck"];
    for q in [stuck.as_str(), "checkout-cart_stuck"] {
        let found = http(addr, "GET", &format!("/?q={q}"), &[], None).await;
        assert_eq!(found.status, 303, "{q}");
        assert_eq!(
            found.header("location"),
            Some(format!("/runs/{stuck}").as_str())
        );
    }
    let missing = http(addr, "GET", "/?q=no-such-key", &[], None).await;
    assert_eq!(missing.status, 404);
    assert!(
        missing
            .body
            .contains("no run has the id or idempotency key")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_page_shows_the_record_the_timeline_and_the_data() {
    let filled = fill("dashboard", "run").await;
    let addr = start(Dashboard::new(store(&filled))).await;
    let stuck = &filled.ids["checkout-cart_stuck"];
    let page = http(addr, "GET", &format!("/runs/{stuck}"), &[], None).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(body.contains("status-compensation_failed"), "{body}");
    assert!(body.contains("<dt>idempotency key</dt><dd>checkout-cart_stuck</dd>"));
    assert!(
        body.contains("&quot;cart_id&quot;: &quot;cart_stuck&quot;"),
        "the input"
    );
    // The timeline: steps as bars, the failed one red with its error as the title, and the
    // compensations (one of which failed: the warehouse is down).
    assert!(body.contains("<svg class=\"timeline\""));
    assert!(body.contains("<g class=\"bar step\""));
    assert!(body.contains("<g class=\"bar step failed\""), "{body}");
    assert!(body.contains("<g class=\"bar compensation\""));
    assert!(body.contains("<g class=\"bar compensation failed\""));
    assert!(body.contains("fill=\"#dc2626\""));
    // The step outputs and compensation data, the hook handlers.
    assert!(body.contains("<table id=\"steps\">"));
    assert!(body.contains("<table id=\"compensations\">"));
    // A finished run's page does not follow it; the interrupted one's does.
    assert!(!body.contains("data-live"));
    let running = &filled.ids["interrupted"];
    let live = http(addr, "GET", &format!("/runs/{running}"), &[], None).await;
    assert!(
        live.body
            .contains(&format!("data-live=\"/runs/{running}/events?seen="))
    );
    assert!(live.body.contains("<script src=\"/assets/live.js\""));

    for missing in [
        "/runs/not-a-run",
        "/runs/01900000-0000-7000-8000-000000000000",
        "/nowhere",
    ] {
        assert_eq!(
            http(addr, "GET", missing, &[], None).await.status,
            404,
            "{missing}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_from_a_run_are_escaped_and_passwords_and_frames_kept_out() {
    let filled = fill("dashboard", "escape").await;
    let addr =
        start(Dashboard::new(store(&filled)).database("postgres://alice:TopSecret123@db/shop"))
            .await;
    let scripted = &filled.ids["script"];
    for path in ["/".to_owned(), format!("/runs/{scripted}")] {
        let page = http(addr, "GET", &path, &[], None).await;
        assert!(
            !page.body.contains("<script>document"),
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains("&lt;script&gt;document.title="),
            "{path}"
        );
        assert!(!page.body.contains("TopSecret123"), "{path}");
        assert!(page.body.contains("postgres://alice:***@db/shop"), "{path}");
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    }
    let _ = SCRIPT;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_token_a_session_its_csrf_token_and_our_origin() {
    let filled = fill("dashboard", "actions").await;
    let run = filled.ids["interrupted"].clone();
    let resume = format!("/runs/{run}/resume");

    // Read-only: no buttons, POSTs refused.
    let read_only = start(Dashboard::new(store(&filled)).workflows(register)).await;
    let page = http(read_only, "GET", &format!("/runs/{run}"), &[], None).await;
    assert!(page.body.contains("id=\"read-only\""));
    assert!(!page.body.contains("<form method=\"post\""));
    let refused = http(read_only, "POST", &resume, &[], Some("csrf=x")).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("read-only"), "{}", refused.body);
    let login = http(
        read_only,
        "POST",
        "/login",
        &[],
        Some(&format!("token={TOKEN}")),
    )
    .await;
    assert_eq!(login.status, 403);

    let addr = start(
        Dashboard::new(store(&filled))
            .token(TOKEN)
            .workflows(register),
    )
    .await;
    // No session: a link to log in, and the POST refused.
    let page = http(addr, "GET", &format!("/runs/{run}"), &[], None).await;
    assert!(page.body.contains("id=\"login\""));
    assert_eq!(
        http(addr, "POST", &resume, &[], Some("csrf=x"))
            .await
            .status,
        403
    );
    // A wrong token opens no session.
    let wrong = http(addr, "POST", "/login", &[], Some("token=guess")).await;
    assert_eq!(wrong.status, 403);
    assert!(session_cookie(&wrong).is_none());
    // The right one does: an HttpOnly, SameSite=Strict cookie.
    let login = http(addr, "POST", "/login", &[], Some(&format!("token={TOKEN}"))).await;
    assert_eq!(login.status, 303);
    let set = login.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = session_cookie(&login).unwrap();
    let page = http(
        addr,
        "GET",
        &format!("/runs/{run}"),
        &[("Cookie", &cookie)],
        None,
    )
    .await;
    let csrf = csrf_in(&page.body).expect("the resume form");
    assert!(page.body.contains("id=\"resume\""));

    // The session without the CSRF token, or with another, or from another site: refused.
    for (headers, form) in [
        (vec![("Cookie", cookie.as_str())], String::new()),
        (vec![("Cookie", cookie.as_str())], "csrf=0000".to_owned()),
        (
            vec![
                ("Cookie", cookie.as_str()),
                ("Origin", "http://evil.example"),
            ],
            format!("csrf={csrf}"),
        ),
    ] {
        let refused = http(addr, "POST", &resume, &headers, Some(&form)).await;
        assert_eq!(refused.status, 403, "{headers:?} {form}");
    }
    let (record, _) = store(&filled)
        .load(RunId::parse(&run).unwrap())
        .await
        .unwrap();
    assert_eq!(record.status, StoredStatus::Running, "nothing was done");

    // All of it: the run is resumed to its end.
    let origin = format!("http://{addr}");
    let done = http(
        addr,
        "POST",
        &resume,
        &[("Cookie", &cookie), ("Origin", &origin)],
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (record, _) = store(&filled)
        .load(RunId::parse(&run).unwrap())
        .await
        .unwrap();
    assert_eq!(record.status, StoredStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_workflows_the_dashboard_says_it_cannot_resume_and_cancels() {
    let filled = fill("dashboard", "cannot").await;
    let run = filled.ids["interrupted"].clone();
    let addr = start(Dashboard::new(store(&filled)).token(TOKEN)).await;
    let login = http(addr, "POST", "/login", &[], Some(&format!("token={TOKEN}"))).await;
    let cookie = session_cookie(&login).unwrap();
    let page = http(
        addr,
        "GET",
        &format!("/runs/{run}"),
        &[("Cookie", &cookie)],
        None,
    )
    .await;
    assert!(page.body.contains("id=\"cannot-resume\""), "{}", page.body);
    let csrf = csrf_in(&page.body).unwrap();
    let form = format!("csrf={csrf}");
    let resume = http(
        addr,
        "POST",
        &format!("/runs/{run}/resume"),
        &[("Cookie", &cookie)],
        Some(&form),
    )
    .await;
    assert_eq!(resume.status, 409);
    assert!(
        resume.body.contains("cannot resume runs"),
        "{}",
        resume.body
    );
    let cancel = http(
        addr,
        "POST",
        &format!("/runs/{run}/cancel"),
        &[("Cookie", &cookie)],
        Some(&form),
    )
    .await;
    assert_eq!(cancel.status, 303, "{}", cancel.body);
    let (record, _) = store(&filled)
        .load(RunId::parse(&run).unwrap())
        .await
        .unwrap();
    assert_eq!(
        record.cancel.map(|c| c.reason).as_deref(),
        Some("cancelled from the dashboard")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_when_given_and_404_otherwise() {
    let filled = fill("dashboard", "metrics").await;
    let none = start(Dashboard::new(store(&filled))).await;
    assert_eq!(http(none, "GET", "/metrics", &[], None).await.status, 404);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let addr = start(Dashboard::new(store(&filled)).metrics(handle)).await;
    let metrics = http(addr, "GET", "/metrics", &[], None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
}

/// The live stream of a running run says `change` once the run has new events (here: it is
/// resumed to its end by an engine), so that its page reloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_runs_stream_says_when_it_changes() {
    let filled = fill("dashboard", "live").await;
    let run = filled.ids["interrupted"].clone();
    let run_id = RunId::parse(&run).unwrap();
    let (_, events) = store(&filled).load(run_id).await.unwrap();
    let addr = start(Dashboard::new(store(&filled))).await;

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /runs/{run}/events?seen={} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        events.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Nothing new yet: no change within a few polls.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let quiet = tokio::time::timeout(Duration::from_millis(1500), async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&got).contains("event: change") {
                break;
            }
        }
    })
    .await;
    assert!(
        quiet.is_err(),
        "no change yet: {}",
        String::from_utf8_lossy(&got)
    );

    let engine = register(hookflow::Engine::builder())
        .store(SqliteStore::open(&filled.db).unwrap())
        .build();
    engine.resume(run_id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&got).contains("event: change") {
        assert!(
            Instant::now() < deadline,
            "no change: {}",
            String::from_utf8_lossy(&got)
        );
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream ended without a change");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("text/event-stream"));
}

/// `hookflow serve`: binds 127.0.0.1, says where, serves the runs read-only without a token;
/// the plain binary cannot resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookflow_serve_serves_the_pages() {
    use std::io::BufRead as _;
    let filled = fill("dashboard", "serve").await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hookflow"))
        .arg("--db")
        .arg(&filled.db)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("HOOKFLOW_DASHBOARD_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    assert!(line.contains("(read-only)"), "{line}");
    let url = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let addr: std::net::SocketAddr = url.parse().unwrap();
    assert!(addr.ip().is_loopback());
    let page = http(addr, "GET", "/", &[], None).await;
    let metrics = http(addr, "GET", "/metrics", &[], None).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(page.status, 200);
    assert_eq!(statuses(&page.body).len(), 6);
    assert_eq!(metrics.status, 200, "hookflow serve installs the recorder");
}
