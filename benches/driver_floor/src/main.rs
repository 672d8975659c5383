//! Which SQLite driver: `cd benches/driver_floor && cargo run --release`. Not part of the
//! workspace (it builds sqlx, which nothing else needs); run it to check the choice of rusqlite.
//! The raw floor of each SQLite driver: a bare insert-commit loop (WAL, synchronous=NORMAL),
//! sequential, and with 64 tasks in flight; plus `SELECT 1` round trips.
use std::time::Instant;

fn rusqlite_seq(path: &str, n: usize) -> f64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT);").unwrap();
    let t = Instant::now();
    for i in 0..n {
        let tx = conn.unchecked_transaction().unwrap();
        tx.execute("INSERT INTO t (body) VALUES (?1)", [format!("{{\"event\":{i}}}")]).unwrap();
        tx.commit().unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

async fn sqlx_seq(path: &str, n: usize) -> (f64, f64) {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
    use std::str::FromStr;
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}")).unwrap().create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)").execute(&pool).await.unwrap();
    let t = Instant::now();
    for i in 0..n {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO t (body) VALUES (?1)").bind(format!("{{\"event\":{i}}}")).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    let commits = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..n {
        sqlx::query("SELECT 1").execute(&pool).await.unwrap();
    }
    let select_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    (commits, select_us)
}

async fn sqlx_conc(path: &str, n: usize, conc: usize) -> f64 {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
    use std::str::FromStr;
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}")).unwrap().create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)").execute(&pool).await.unwrap();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conc {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / conc {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("INSERT INTO t (body) VALUES (?1)").bind(format!("{{\"event\":{c}-{i}}}")).execute(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks { t.await.unwrap(); }
    n as f64 / t.elapsed().as_secs_f64()
}

fn rusqlite_select(path: &str, n: usize) -> f64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        let _: i64 = conn.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join("hookflow-driver-floor");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let n = 5000;
    let r = rusqlite_seq(&p("r.db"), n);
    let rs = rusqlite_select(&p("r.db"), n);
    let (s, ss) = sqlx_seq(&p("s.db"), n).await;
    let sc = sqlx_conc(&p("sc.db"), n, 64).await;
    println!("{{\"rusqlite_commits_per_s\":{r:.0},\"rusqlite_select1_us\":{rs:.2},\"sqlx_commits_per_s\":{s:.0},\"sqlx_select1_us\":{ss:.1},\"sqlx_commits_per_s_64_in_flight_pool4\":{sc:.0}}}");
}
