//! The one HTML-escaping helper every value goes through, the page frame around each page,
//! and the security headers every response carries.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

/// `text` made safe for HTML text and for a double- or single-quoted attribute: `&`, `<`,
/// `>`, `"` and `'` become entities. Every value read from a run or a request goes through
/// this before it reaches a page; it never passes markup through.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as a query-string component: everything but unreserved characters
/// percent-encoded.
pub(crate) fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Content-Security-Policy of every page: nothing but inline styles and this
/// dashboard's own script, never framed.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2937;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:baseline}
header a{color:#fff;text-decoration:none;font-weight:600}
header .db{color:#cbd5e1;font-size:12px}
main{padding:1em 1.2em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e5e7eb;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
td.error,.failed{color:#b91c1c}
.status{font-family:monospace;padding:0 .4em;border-radius:3px;background:#e5e7eb}
.status-completed{background:#dcfce7}.status-compensated{background:#fef9c3}
.status-compensation_failed,.status-cancelled{background:#fee2e2}.status-running,.status-waiting{background:#dbeafe}
.status-parked{background:#ede9fe}
pre{background:#fff;border:1px solid #e5e7eb;padding:.5em;overflow:auto;max-height:20em;margin:.2em 0}
form.filters{display:flex;gap:.6em;margin-bottom:1em;align-items:end}
dl.record{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.record dt{font-weight:600}
dl.record dd{margin:0}
.note{color:#555}
.banner{padding:.5em 1em;background:#fef3c7;border:1px solid #f59e0b;margin-bottom:1em}
svg.timeline{background:#fff;border:1px solid #e5e7eb}
";

/// A whole page: `title` (escaped here) and `body` (already HTML, built from escaped
/// values); `script` adds this dashboard's own live-update script (served at
/// `assets/live.js` relative to `root`, the path back to the dashboard's root).
pub(crate) fn page(title: &str, root: &str, db: &str, body: &str, script: bool) -> Response {
    let script = if script {
        format!(r#"<script src="{root}assets/live.js" defer></script>"#)
    } else {
        String::new()
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · hookflow</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style>{script}</head>\
         <body><header><a href=\"{root}\">hookflow runs</a><span class=\"db\">{db}</span></header>\
         <main>{body}</main></body></html>",
        title = escape(title),
        db = escape(db),
    );
    secure(Html(html).into_response())
}

/// `response` with the security headers: the CSP above, `X-Content-Type-Options: nosniff`,
/// `X-Frame-Options: DENY`, `Referrer-Policy: same-origin` (not `no-referrer`: with it a browser sends `Origin: null` on a form POST) and `Cache-Control: no-store`.
pub(crate) fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A short page that says what went wrong, with `status`.
pub(crate) fn problem(
    status: axum::http::StatusCode,
    root: &str,
    db: &str,
    message: &str,
) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"problem\">{}</p><p><a href=\"{root}\">all runs</a></p>",
        status.as_u16(),
        escape(message)
    );
    let mut response = page(
        status.canonical_reason().unwrap_or("error"),
        root,
        db,
        &body,
        false,
    );
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::{escape, url_component};

    #[test]
    fn markup_comes_out_as_text() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain"), "plain");
        assert_eq!(url_component("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
