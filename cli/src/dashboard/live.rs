//! A running run's page follows it: `/runs/{id}/events` is a server-sent-events stream that
//! polls the store for the run's new events and says `change` when there are some; the page's
//! script (`/assets/live.js`, the only script) reloads the page then.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use hookflow_runtime::RunId;
use serde::Deserialize;

use super::Shared;
use super::html::secure;

/// How often the stream reads the run again.
const POLL: Duration = Duration::from_millis(500);

/// The script of a live page: on the first `change`, reload. It reads the stream's address
/// from the `data-live` attribute of the page's `<main>` element.
const SCRIPT: &str = "(function(){var el=document.querySelector('[data-live]');if(!el||!window.EventSource)return;\
var es=new EventSource(el.getAttribute('data-live'));\
es.addEventListener('change',function(){es.close();location.reload();});})();\n";

/// `GET /assets/live.js`.
pub(crate) async fn script() -> Response {
    secure(
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            SCRIPT,
        )
            .into_response(),
    )
}

#[derive(Deserialize)]
pub(crate) struct Seen {
    /// How many events of the run the page shows.
    #[serde(default)]
    seen: usize,
}

/// `GET /runs/{id}/events?seen=N`: a `change` event (its data the number of events) as soon
/// as the run has more than `N` events or has ended, then the stream ends; a comment every 15 s
/// meanwhile. A store error ends the stream with an `error` event.
pub(crate) async fn events(
    State(state): Shared,
    Path(id): Path<String>,
    Query(seen): Query<Seen>,
) -> Response {
    let Ok(run_id) = RunId::parse(&id) else {
        return state.problem(StatusCode::NOT_FOUND, "not a run id");
    };
    let store = state.store.clone();
    let stream = stream::unfold(Some(seen.seen), move |seen| {
        let store = store.clone();
        async move {
            let seen = seen?;
            let mut first = true;
            loop {
                if !first {
                    tokio::time::sleep(POLL).await;
                }
                first = false;
                match store.load(run_id).await {
                    Ok((record, events)) => {
                        if events.len() > seen || record.status.is_finished() {
                            let event = Event::default()
                                .event("change")
                                .data(events.len().to_string());
                            return Some((Ok::<_, Infallible>(event), None));
                        }
                    }
                    Err(err) => {
                        let event = Event::default().event("error").data(err.to_string());
                        return Some((Ok(event), None));
                    }
                }
            }
        }
    });
    secure(
        Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
    )
}
