//! Wake-ups across processes: `NOTIFY` when a run becomes claimable, and one connection per
//! store that `LISTEN`s and wakes this process's workers.
//!
//! The listening connection is the store's own (not one of the pool's), named
//! [`APPLICATION_NAME`] in `pg_stat_activity`. When it drops, it is opened again with
//! backoff ([`MIN_BACKOFF`] doubling up to [`MAX_BACKOFF`]); meanwhile the workers find runs
//! by polling, and once it listens again it wakes them once, for the notifications it may
//! have missed. Its errors are logged at `warn` (never with the url's password: a
//! tokio-postgres error does not hold it).

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::AsyncMessage;

use super::errors::{db_message, pg};
use super::tls::Connector;
use crate::store::{StoreError, WakeupSignal};

/// The channel the store notifies and listens on.
pub(super) const CHANNEL: &str = "hookflow_claimable";

/// The statement that notifies [`CHANNEL`]: inside a transaction, the notification is sent
/// when (and only if) it commits.
pub(super) const NOTIFY: &str = "SELECT pg_notify('hookflow_claimable', '')";

/// The `application_name` of the listening connection.
pub(super) const APPLICATION_NAME: &str = "hookflow-wakeups";

/// The first wait before listening again after the connection dropped.
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Tells every process listening on the database (this one included) that a run became
/// claimable: a free run was created, or a run released. Every statement of the store that
/// makes a run claimable calls it after it, on the same connection; inside a transaction,
/// run [`NOTIFY`] on it instead, so that the notification leaves with the commit. A failure
/// is logged, never returned: the change it announces is committed, and the workers find
/// the run at their next poll.
pub(super) async fn notify_claimable(client: &tokio_postgres::Client) {
    if let Err(err) = client.execute(NOTIFY, &[]).await {
        tracing::warn!(
            error = %db_message(&err),
            "hookflow: cannot notify the workers of a claimable run, they find it by polling"
        );
    }
}

/// The wake-ups of a store connected with `config` and `tls` (the pool's settings, TLS
/// included), listened for on `runtime`, the store's, as long as it runs ([`listen`]).
pub(super) fn start(
    runtime: &tokio::runtime::Handle,
    config: tokio_postgres::Config,
    tls: Connector,
    timeout: Duration,
) -> Arc<WakeupSignal> {
    let signal = Arc::new(WakeupSignal::default());
    drop(runtime.spawn(listen(config, tls, timeout, Arc::clone(&signal))));
    signal
}

/// Listens on [`CHANNEL`] for as long as the store's runtime runs (it is dropped with the
/// store), waking `signal` on every notification; reconnects with backoff when the
/// connection drops or cannot be made.
async fn listen(
    mut config: tokio_postgres::Config,
    tls: Connector,
    timeout: Duration,
    signal: Arc<WakeupSignal>,
) {
    config.application_name(APPLICATION_NAME);
    let mut backoff = MIN_BACKOFF;
    loop {
        let listened = listen_once(&config, tls.clone(), timeout, &signal).await;
        match listened {
            // It listened, then the connection was closed: try again soon.
            Ok(true) => backoff = MIN_BACKOFF,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    retry_in = ?backoff,
                    "hookflow: PostgreSQL wake-ups lost, workers poll until they are back"
                );
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects, listens and forwards notifications until the connection ends: `Ok(true)` if it
/// was listening by then, or the error that ended it (an error after listening began is
/// logged as well, and counts as having listened).
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: Connector,
    timeout: Duration,
    signal: &WakeupSignal,
) -> Result<bool, StoreError> {
    let connected = tokio::time::timeout(timeout, config.connect(tls))
        .await
        .map_err(|_| StoreError::NoAnswer {
            context: "connect to listen for wake-ups".into(),
            timeout,
        })?;
    let (client, mut connection) = connected.map_err(pg("connect to listen for wake-ups"))?;
    let statement = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done.map_err(pg("listen for wake-ups"))?;
                listening = true;
                // Runs may have become claimable while nobody listened.
                signal.claimable();
            }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(_))) => signal.claimable(),
                Some(Ok(_)) => {}
                Some(Err(err)) if listening => {
                    tracing::warn!(
                        error = %db_message(&err),
                        "hookflow: PostgreSQL wake-ups lost, listening again"
                    );
                    return Ok(true);
                }
                Some(Err(err)) => return Err(pg("listen for wake-ups")(err)),
                None => return Ok(listening),
            },
        }
    }
}
