//! A plain tokio-postgres client for the tests that read or change the database directly.

/// A client of the database at `url`, its connection driven by a task of its own.
pub async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
