//! The `hookflow` command on what is not a hookflow store, or not one it may change: another
//! application's SQLite file, an empty file, an older store, and a store it only looks at are
//! all left byte for byte as they were; and a PostgreSQL URL's password never shows, even
//! when the server never answers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;

const PASSWORD: &str = "TopSecret123";

mod support;

use support::{Parcel, hookflow};

fn tempdir(name: &str) -> PathBuf {
    support::tempdir("hostile", name)
}

/// Every file in `dir` with its bytes, sorted by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

const RUN: &str = "01900000-0000-7000-8000-000000000000";

#[test]
fn what_is_not_a_store_is_refused_by_every_command_and_left_as_it_was() {
    for (name, reason) in [
        (
            "other-app.db",
            "it holds another application's schema (table `invoices`, table `users`, index `users_by_name`) and no hookflow schema version",
        ),
        (
            "empty.db",
            "the database is empty: no hookflow engine has written to it",
        ),
        ("notes.txt", "it is not a SQLite database"),
    ] {
        let dir = tempdir(name);
        let path = dir.join(name);
        match name {
            "other-app.db" => rusqlite::Connection::open(&path)
                .unwrap()
                .execute_batch(
                    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
                     CREATE INDEX users_by_name ON users (name);
                     CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER);
                     INSERT INTO users (name) VALUES ('alice');",
                )
                .unwrap(),
            "empty.db" => std::fs::write(&path, b"").unwrap(),
            _ => std::fs::write(&path, "a list of things to do\n".repeat(100)).unwrap(),
        }
        let before = snapshot(&dir);
        let db = path.to_str().unwrap();
        for args in [
            &["runs"][..],
            &["show", RUN],
            &["diagram", RUN],
            &["diagram", "--gantt", RUN],
            &["resume", RUN],
            &["prune", "--older-than", "0s"],
        ] {
            let (code, out, err) = hookflow(db, args);
            assert_eq!(code, 1, "{name} {args:?}: {out}{err}");
            assert_eq!(out, "", "{name} {args:?}");
            let expected = format!("hookflow: {db} is not a hookflow store (");
            assert!(err.starts_with(&expected), "{name} {args:?}: {err}");
            assert!(err.contains(reason), "{name} {args:?}: {err}");
            assert!(
                err.ends_with("); it was left as it was\n"),
                "{name} {args:?}: {err}"
            );
            assert_eq!(
                snapshot(&dir),
                before,
                "{name} {args:?}: the directory changed"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test]
async fn looking_at_a_store_never_writes_to_it() {
    let dir = tempdir("store");
    let path = dir.join("runs.db");
    let run_id = {
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let engine = Engine::builder()
            .store(Arc::clone(&store))
            .workflow::<Parcel>()
            .build();
        engine
            .run::<Parcel>("box".into())
            .await
            .run_id()
            .to_string()
    };
    // Once the store's connection closed, the WAL is checkpointed into the file and removed.
    let wal = dir.join("runs.db-wal");
    for _ in 0..500 {
        if !wal.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before = std::fs::read(&path).unwrap();
    let db = path.to_str().unwrap();
    for args in [
        &["runs"][..],
        &["show", &run_id],
        &["diagram", &run_id],
        &["diagram", "--gantt", &run_id],
        &["schedules"],
    ] {
        let (code, out, err) = hookflow(db, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!out.is_empty());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{args:?} wrote to it"
        );
    }

    // A store of an older hookflow: refused, clearly, and not migrated.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 1;")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let (code, _, err) = hookflow(db, &["runs"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the store's schema version 1 is older than this hookflow's (8) and a read-only store does not migrate it"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A server that accepts connections and never says a word: its port.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_password_never_shows() {
    let port = silent_server();
    let silent = format!("postgres://alice:{PASSWORD}@127.0.0.1:{port}/shop?connect_timeout=1");
    for args in [
        &["runs"][..],
        &["resume", RUN],
        &["prune", "--older-than", "30d"],
    ] {
        let (code, out, err) = hookflow(&silent, args);
        assert_eq!(code, 1, "{err}");
        assert_eq!(
            err,
            format!(
                "hookflow: cannot open the store postgres://alice:***@127.0.0.1:{port}/shop?connect_timeout=1: store unavailable: connect to the database: the server did not answer within 1 s\n"
            )
        );
        assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));
    }
    for db in [
        // Nothing listens on port 1; an option that does not exist.
        format!("postgres://alice:{PASSWORD}@127.0.0.1:1/shop"),
        format!("postgresql://alice:{PASSWORD}@127.0.0.1:1/shop?no_such_option=1"),
        // A key/value string is not a URL: the command takes it for a file name, and hides
        // its password all the same.
        format!("host=127.0.0.1 user=alice password={PASSWORD}"),
    ] {
        let (code, out, err) = hookflow(&db, &["runs"]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(":***@") || err.contains("password=***"),
            "{err}"
        );
        assert!(
            !out.contains(PASSWORD) && !err.contains(PASSWORD),
            "{out}{err}"
        );
    }
}
