#[path = "../benches/w5/mod.rs"]
mod w5;
use hookflow::store::sqlite::SqliteStore;
use std::sync::Arc;
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = std::path::PathBuf::from("/tmp/cg23/walx");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runs.db");
        let engine = w5::durable_engine(Arc::new(SqliteStore::open(&path).unwrap()));
        for _ in 0..300 {
            assert!(engine.run::<w5::W5>(w5::input()).await.is_completed());
        }
        let reader = rusqlite::Connection::open(&path).unwrap();
        reader
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
            .unwrap();
        let n: usize = std::env::args()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(5);
        for _ in 0..n {
            assert!(engine.run::<w5::W5>(w5::input()).await.is_completed());
        }
        std::fs::copy(dir.join("runs.db-wal"), dir.join("copy.wal")).unwrap();
        reader.execute_batch("COMMIT").unwrap();
    });
}
