//! Connecting to PostgreSQL: a server that accepts the connection and never answers is
//! reported within the url's `connect_timeout`, as such; no error carries the url's password;
//! and a read-only connection never creates or migrates, and refuses every write.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use hookflow::store::postgres::PostgresStore;
use hookflow::store::{Lease, Store, StoreError};

use crate::support::postgres::{pg_database, pg_psql};

const PASSWORD: &str = "TopSecret123";

/// A server that accepts connections and never says a word: its port.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream); // Kept open, never answered.
        }
    });
    port
}

fn assert_no_password(err: &StoreError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(PASSWORD), "the password shows in {shown}");
    }
}

#[tokio::test]
async fn a_server_that_never_answers_is_reported_within_the_connect_timeout() {
    let port = silent_server();
    for url in [
        format!("postgres://alice:{PASSWORD}@127.0.0.1:{port}/shop?connect_timeout=1"),
        format!("host=127.0.0.1 port={port} user=alice password={PASSWORD} connect_timeout=1"),
    ] {
        for read_only in [false, true] {
            let started = Instant::now();
            let connected = if read_only {
                PostgresStore::connect_read_only(&url).await
            } else {
                PostgresStore::connect(&url).await
            };
            let took = started.elapsed();
            let err = connected.unwrap_err();
            assert!(
                matches!(&err, StoreError::NoAnswer { context, timeout }
                    if context == "connect to the database" && *timeout == Duration::from_secs(1)),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                "store unavailable: connect to the database: the server did not answer within 1 s"
            );
            assert!(
                took >= Duration::from_millis(900) && took < Duration::from_secs(4),
                "reported after {took:?}"
            );
            assert_no_password(&err);
        }
    }
}

#[tokio::test]
async fn no_error_carries_the_password() {
    // Nothing listens on port 1; an option that does not exist; a value that does not parse.
    for url in [
        format!("postgres://alice:{PASSWORD}@127.0.0.1:1/shop"),
        format!("postgres://alice:{PASSWORD}@127.0.0.1/shop?no_such_option=1"),
        format!("postgres://alice:{PASSWORD}@127.0.0.1:port/shop"),
        format!("host=127.0.0.1 port=1 password='{PASSWORD}"),
    ] {
        let err = PostgresStore::connect(&url).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
        assert_no_password(&err);
    }
}

#[tokio::test]
async fn a_read_only_connection_never_creates_or_migrates() {
    let url = pg_database("read_only");
    // An empty database: refused, and left empty (asked again, it still has no schema table).
    for _ in 0..2 {
        let err = PostgresStore::connect_read_only(&url).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::NotAStore { reason } if reason.contains("no table `hookflow_schema`")),
            "{err}"
        );
    }

    drop(PostgresStore::connect(&url).await.unwrap());
    let store = PostgresStore::connect_read_only(&url).await.unwrap();
    assert!(store.is_read_only());
    assert!(store.list(None, None, 10).await.unwrap().runs.is_empty());
    let lease = Lease {
        owner: "reader".into(),
        duration: Duration::from_secs(5),
    };
    let run_id = hookflow::RunId::parse("01a21009-8e2e-7596-a1ac-000000000001").unwrap();
    let refused = |result: Result<(), StoreError>, what: &str| match result {
        Err(StoreError::ReadOnly { context }) => assert_eq!(context, what),
        other => panic!("{what}: expected a read-only refusal, got {other:?}"),
    };
    refused(store.commit(run_id, 1, &[], None).await, "commit");
    refused(store.claim(run_id, &lease).await.map(drop), "claim a run");
    refused(store.release(run_id, 1).await, "release a run");
    refused(
        store.renew(&lease, &[run_id]).await.map(drop),
        "renew a lease",
    );
    refused(
        store
            .claim_next(&lease, &[("ship".into(), 1)], &[], 1)
            .await
            .map(drop),
        "claim runs",
    );
    assert!(store.pending().await.unwrap().runs.is_empty());
    drop(store);

    // An older hookflow's database: refused read-only (connecting for writing migrates it).
    pg_psql(&url, &["UPDATE hookflow_schema SET version = 1"]);
    let err = PostgresStore::connect_read_only(&url).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaOutdated {
                found: 1,
                supported: 8
            }
        ),
        "{err}"
    );
}
