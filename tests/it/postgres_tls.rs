//! TLS to PostgreSQL: against a cluster that takes TLS connections only, with a certificate
//! for localhost and 127.0.0.1 signed by a CA of its own (started once for this test binary
//! by `scripts/postgres.sh start-tls`: see tests/it/support/postgres_tls.rs), the store runs
//! a workflow with `sslmode=verify-full` and the CA file, on every connection it opens;
//! refuses a certificate that another CA checks, or that does not name the host; connects
//! with `require` and `prefer` without a CA file; and says why when one side refuses TLS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookflow::prelude::*;
use hookflow::store::postgres::PostgresStore;
use hookflow::store::{Store, StoreError, StoredStatus};

use crate::support::postgres::{pg_psql, pg_server, pg_with_database};
use crate::support::postgres_tls::{TlsServer, other_ca, pg_tls_server, psql_succeeds};

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[step(compensate = unlabel)]
async fn label(_ctx: &StepContext, parcel: String) -> Result<StepResponse<String, String>, Never> {
    Ok(StepResponse::new(format!("label for {parcel}"), parcel))
}

async fn unlabel(_ctx: &StepContext, _parcel: String) -> Result<(), Never> {
    Ok(())
}

#[step]
async fn dispatch(_ctx: &StepContext, label: String) -> Result<String, Never> {
    Ok(format!("{label}, dispatched"))
}

#[workflow]
async fn ship(ctx: &WorkflowContext, parcel: String) -> Result<String, Never> {
    let label = label(ctx, parcel).await?;
    dispatch(ctx, label).await
}

/// A new database on the TLS cluster for the test `name`: the cluster's URL to it (with
/// `sslmode=verify-full` and its CA).
fn tls_database(name: &str) -> String {
    let server = pg_tls_server();
    let database = format!("hookflow_tls_{}_{name}", std::process::id());
    pg_psql(
        &server.url,
        &[
            &format!("DROP DATABASE IF EXISTS {database}"),
            &format!("CREATE DATABASE {database}"),
        ],
    );
    pg_with_database(&server.url, &database)
}

/// A URL to the TLS cluster's `hookflow` database with the TLS parameters `tls`.
fn url_with(server: &TlsServer, host: &str, tls: &str) -> String {
    format!(
        "postgres://{}@{host}:{}/hookflow?connect_timeout=10&{tls}",
        server.user(),
        server.port()
    )
}

async fn connect_err(url: &str) -> StoreError {
    match PostgresStore::connect(url).await {
        Ok(store) => panic!("connected to {url}: {store:?}"),
        Err(err) => err,
    }
}

#[tokio::test]
async fn verify_full_with_the_ca_runs_a_workflow_durably_on_tls_connections_only() {
    let url = tls_database("durable");
    assert!(url.contains("sslmode=verify-full&sslrootcert="), "{url}");
    let run_id = {
        let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
        let engine = Engine::builder()
            .worker_id("tls")
            .store(store.clone())
            .workflow::<Ship>()
            .build();
        let outcome = engine.run::<Ship>("p1".into()).await;
        assert!(outcome.is_completed(), "{outcome:?}");
        // The store's LISTEN connection is up, over TLS (the cluster takes no other).
        let listening = "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'hookflow-wakeups' \
             AND s.ssl) THEN RAISE EXCEPTION 'not listening over TLS'; END IF; END $$";
        let deadline = Instant::now() + Duration::from_secs(20);
        while !psql_succeeds(&url, listening) {
            assert!(
                Instant::now() < deadline,
                "the store's wake-ups connection is not up over TLS"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        outcome.run_id()
    };
    // Recorded: a new store reads it back, and so does a read-only one.
    for read_only in [false, true] {
        let store = if read_only {
            PostgresStore::connect_read_only(&url).await.unwrap()
        } else {
            PostgresStore::connect(&url).await.unwrap()
        };
        let (record, events) = store.load(run_id).await.unwrap();
        assert_eq!(record.status, StoredStatus::Completed);
        assert_eq!(
            record.output,
            Some(serde_json::json!("label for p1, dispatched"))
        );
        assert!(events.len() >= 6, "{events:?}");
    }
}

#[tokio::test]
async fn a_certificate_another_ca_did_not_sign_is_refused_with_the_ca_file_named() {
    let server = pg_tls_server();
    let other = other_ca("refused");
    for tls in [
        "sslmode=verify-full",
        "sslmode=verify-ca",
        "sslmode=require",
    ] {
        let url = url_with(
            server,
            "127.0.0.1",
            &format!("{tls}&sslrootcert={}", other.display()),
        );
        let expected = format!(
            "the server's certificate is not signed by the CA in {}",
            other.display()
        );
        let err = connect_err(&url).await;
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        assert!(err.to_string().contains(&expected), "{tls}: {err}");
        let err = PostgresStore::connect_read_only(&url).await.unwrap_err();
        assert!(err.to_string().contains(&expected), "{tls}: {err}");
    }
    // The same urls with the cluster's CA connect.
    for tls in [
        "sslmode=verify-full",
        "sslmode=verify-ca",
        "sslmode=require",
    ] {
        let url = url_with(
            server,
            "127.0.0.1",
            &format!("{tls}&sslrootcert={}", server.ca().display()),
        );
        PostgresStore::connect(&url).await.unwrap();
    }
    let _ = std::fs::remove_dir_all(other.parent().unwrap());
}

#[tokio::test]
async fn require_and_prefer_connect_without_a_ca_file() {
    let server = pg_tls_server();
    for tls in ["sslmode=require", "sslmode=prefer", "connect_timeout=10"] {
        let url = url_with(server, "127.0.0.1", tls);
        let store = PostgresStore::connect(&url).await.unwrap();
        let engine = Engine::builder()
            .worker_id("tls")
            .store(Arc::new(store))
            .workflow::<Ship>()
            .build();
        assert!(
            engine.run::<Ship>("p2".into()).await.is_completed(),
            "{tls}"
        );
    }
}

#[tokio::test]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_name() {
    let server = pg_tls_server();
    let ca = server.ca();
    // Connected to 127.0.0.1, checked as `db.invalid`: the certificate names localhost and
    // 127.0.0.1 only.
    let url = url_with(
        server,
        "db.invalid",
        &format!(
            "hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
            ca.display()
        ),
    );
    let err = connect_err(&url).await;
    assert!(
        err.to_string()
            .contains("the server's certificate is not valid for the host name `db.invalid`"),
        "{err}"
    );
    // verify-ca checks the CA only; and verify-full accepts each name the certificate has,
    // in the key/value form too.
    PostgresStore::connect(&url.replace("verify-full", "verify-ca"))
        .await
        .unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let conn = format!(
            "host={host} port={} user={} dbname=hookflow sslmode=verify-full sslrootcert='{}'",
            server.port(),
            server.user(),
            ca.display()
        );
        PostgresStore::connect(&conn).await.unwrap();
    }
}

#[tokio::test]
async fn disable_against_a_server_that_takes_tls_only_says_so() {
    let server = pg_tls_server();
    let err = connect_err(&url_with(server, "127.0.0.1", "sslmode=disable")).await;
    let shown = err.to_string();
    assert!(
        shown.starts_with("store unavailable: connect to the database: "),
        "{shown}"
    );
    assert!(
        shown.contains("no encryption")
            && shown.contains(
                "(the server accepts this client over TLS only, and the url says sslmode=disable)"
            ),
        "{shown}"
    );
}

#[tokio::test]
async fn a_server_without_tls_is_refused_under_require_and_verify_and_used_under_prefer() {
    // The shared plain server: no TLS at all.
    let plain = pg_server();
    let with = |tls: &str| {
        let separator = if plain.contains('?') { '&' } else { '?' };
        format!("{plain}{separator}{tls}")
    };
    for mode in ["require", "verify-ca", "verify-full"] {
        let err = connect_err(&with(&format!("sslmode={mode}"))).await;
        assert!(
            err.to_string().contains(&format!(
                "the server does not accept TLS connections, and sslmode={mode} requires TLS"
            )),
            "{err}"
        );
    }
    for tls in ["sslmode=prefer", "sslmode=disable"] {
        PostgresStore::connect(&with(tls)).await.unwrap();
    }
}

#[tokio::test]
async fn an_unknown_sslmode_or_an_unreadable_ca_file_is_refused_before_connecting() {
    let server = pg_tls_server();
    let err = connect_err(&url_with(server, "127.0.0.1", "sslmode=verify_full")).await;
    assert_eq!(
        err.to_string(),
        "store unavailable: read the url's TLS settings: unknown sslmode `verify_full`: \
         expected disable, prefer, require, verify-ca or verify-full"
    );
    let missing = server.dir.join("no-such-ca.pem");
    let err = connect_err(&url_with(
        server,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", missing.display()),
    ))
    .await;
    assert!(
        err.to_string().starts_with(&format!(
            "store unavailable: load the CA certificates: cannot read the CA file {}: ",
            missing.display()
        )),
        "{err}"
    );
}
