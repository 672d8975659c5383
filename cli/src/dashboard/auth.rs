//! Who may act: the login with the dashboard's token (an `HttpOnly`, `SameSite=Strict`
//! session cookie), each session's CSRF token, and the `Origin`/`Host` check on every POST.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html::{escape, page, secure};
use super::{Shared, State as DashboardState};

/// The session cookie's name.
const COOKIE: &str = "hookflow_session";
/// At most this many sessions are kept; the oldest is forgotten first.
const MAX_SESSIONS: usize = 1024;

/// The logged-in sessions: each session id with its CSRF token.
#[derive(Default)]
pub(crate) struct Sessions {
    inner: Mutex<(HashMap<String, String>, VecDeque<String>)>,
}

impl Sessions {
    fn open(&self) -> Option<(String, String)> {
        let (id, csrf) = (random_hex()?, random_hex()?);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.1.len() >= MAX_SESSIONS
            && let Some(oldest) = inner.1.pop_front()
        {
            inner.0.remove(&oldest);
        }
        inner.0.insert(id.clone(), csrf.clone());
        inner.1.push_back(id.clone());
        Some((id, csrf))
    }

    fn close(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0.remove(id);
        inner.1.retain(|s| s != id);
    }

    fn csrf(&self, id: &str) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0.get(id).cloned()
    }
}

/// 32 random bytes as hex, from the operating system; `None` if it has none to give.
fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `a` equals `b`, in a time that does not depend on where they first differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session id of the request's cookie.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_owned())
        })
}

/// The CSRF token of the request's session, when the dashboard has a token and the request
/// a live session: what the pages put in their action forms.
pub(crate) fn csrf_of(state: &DashboardState, headers: &HeaderMap) -> Option<String> {
    state.token.as_ref()?;
    state.sessions.csrf(&session_id(headers)?)
}

/// Whether the request's `Origin`, when it has one, is the dashboard's own (`Host`). A
/// browser sends `Origin` with every POST from a page; another site's page has another.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str().ok(), host) {
        (Some(origin), Some(host)) => {
            origin == format!("http://{host}") || origin == format!("https://{host}")
        }
        _ => false,
    }
}

/// Checks a POST that acts on a run: the dashboard has a token, the request comes from its
/// own origin, from a logged-in session, with that session's CSRF token. `Err` is the 403
/// page that says which is missing.
pub(crate) fn authorize(
    state: &DashboardState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<(), Box<Response>> {
    let refuse = |why: &str| Err(Box::new(state.problem(StatusCode::FORBIDDEN, why)));
    if state.token.is_none() {
        return refuse(
            "this dashboard is read-only: start it with a token (--token or HOOKFLOW_DASHBOARD_TOKEN) to resume or cancel runs",
        );
    }
    if !same_origin(headers) {
        return refuse(
            "refused: the request comes from another site (Origin is not this dashboard)",
        );
    }
    let Some(expected) = session_id(headers).and_then(|id| state.sessions.csrf(&id)) else {
        return refuse("log in with the dashboard's token first");
    };
    match csrf {
        Some(given) if same(given, &expected) => Ok(()),
        _ => refuse("refused: the form's CSRF token is missing or not this session's"),
    }
}

/// `GET /login`: the login form (or a note that the dashboard is read-only).
pub(crate) async fn login_form(State(state): Shared) -> Response {
    login_page(&state, None)
}

fn login_page(state: &Arc<DashboardState>, error: Option<&str>) -> Response {
    let root = state.root();
    let body = if state.token.is_none() {
        "<p>This dashboard is read-only: it has no token to log in with.</p>".to_owned()
    } else {
        format!(
            "<h1>Log in</h1>{}<form method=\"post\" action=\"{root}login\">\
             <label>Token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\"></label> \
             <button type=\"submit\" id=\"login\">Log in</button></form>",
            error.map_or(String::new(), |e| format!(
                "<p class=\"failed\">{}</p>",
                escape(e)
            ))
        )
    };
    page("log in", &root, &state.db, &body, false)
}

#[derive(Deserialize)]
pub(crate) struct Login {
    token: String,
}

/// `POST /login`: with the dashboard's token, opens a session (the cookie) and goes to the
/// runs; otherwise shows the form again with 403.
pub(crate) async fn login(
    State(state): Shared,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let Some(token) = &state.token else {
        return state.problem(StatusCode::FORBIDDEN, "this dashboard is read-only");
    };
    if !same_origin(&headers) {
        return state.problem(
            StatusCode::FORBIDDEN,
            "refused: the request comes from another site",
        );
    }
    if !same(&form.token, token) {
        let mut response = login_page(&state, Some("wrong token"));
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    let Some((id, _csrf)) = state.sessions.open() else {
        return state.problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the operating system gave no randomness for a session",
        );
    };
    let root = state.root();
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path={root}");
    let mut response = Redirect::to(&root).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    secure(response)
}

/// `POST /logout`: forgets the session.
pub(crate) async fn logout(State(state): Shared, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers)
        && same_origin(&headers)
    {
        state.sessions.close(&id);
    }
    secure(Redirect::to(&state.root()).into_response())
}
