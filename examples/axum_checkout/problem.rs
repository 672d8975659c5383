//! RFC 9457 problems (`application/problem+json`): how the service answers every error.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// The media type of problem responses (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Where the problem types live: the `type` of a problem is this plus its kind. A real
/// service points it at its documentation.
pub const PROBLEM_TYPES: &str = "https://hookflow.example/problems/";

/// An RFC 9457 problem, answered as `application/problem+json`: `type`, `title`, `status`,
/// `detail`, `instance`, and extension members.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    body: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem of `kind` (appended to [`PROBLEM_TYPES`] to make its `type`).
    pub fn new(status: StatusCode, kind: &str, title: &str) -> Self {
        let mut body = Map::new();
        body.insert("type".into(), format!("{PROBLEM_TYPES}{kind}").into());
        body.insert("title".into(), title.into());
        body.insert("status".into(), status.as_u16().into());
        Problem {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// What happened, for a human.
    #[must_use]
    pub fn detail(self, detail: impl Into<String>) -> Self {
        self.extension("detail", detail.into())
    }

    /// The path of the request that had the problem.
    #[must_use]
    pub fn instance(self, path: &str) -> Self {
        self.extension("instance", path)
    }

    /// A member of the problem object.
    #[must_use]
    pub fn extension(mut self, name: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.body.insert(name.to_owned(), value);
        self
    }

    /// A header of the response (`WWW-Authenticate`, ...).
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Value::Object(self.body).to_string();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}
