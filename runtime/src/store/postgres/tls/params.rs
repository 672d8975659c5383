//! The TLS parameters of a connection string, taken out of it before tokio-postgres reads
//! the rest: tokio-postgres knows three of libpq's five `sslmode`s and neither `sslrootcert`
//! nor `sslsni`, and refuses what it does not know.
//!
//! Both of libpq's forms are read: a URL (`postgres://…?sslmode=verify-full&sslrootcert=…`,
//! with percent-encoded values) and a key/value string (`host=db sslmode=verify-full`, with
//! values that may be quoted). What is left is the original text less the parameters taken:
//! every other parameter, the password included, goes to tokio-postgres as it was written.
//! A string tokio-postgres cannot parse is left for it to refuse (its errors never quote a
//! value).

use std::ops::Range;

/// The parameters taken out, those this store reads itself.
pub(super) const TAKEN: [&str; 3] = ["sslmode", "sslrootcert", "sslsni"];

/// A connection string split in two: what tokio-postgres reads, and the TLS parameters.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Split {
    /// The connection string without the parameters of [`TAKEN`].
    pub(super) rest: String,
    /// The parameters of [`TAKEN`] found, decoded, in the order they were written (a
    /// parameter written twice is there twice: the last one counts, as in libpq).
    pub(super) taken: Vec<(&'static str, String)>,
}

/// A percent-encoded URL parameter that is not UTF-8 once decoded: the parameter's name.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the url's parameter `{0}` is not valid UTF-8 once percent-decoded")]
pub(crate) struct NotUtf8(pub(crate) String);

/// Splits `conn`, a URL (`postgres://` or `postgresql://`) or a key/value string.
///
/// # Errors
/// [`NotUtf8`] when a URL's TLS parameter does not decode (never for another parameter:
/// tokio-postgres reports those).
pub(super) fn split(conn: &str) -> Result<Split, NotUtf8> {
    let is_url = ["postgres://", "postgresql://"]
        .iter()
        .any(|prefix| conn.starts_with(prefix));
    if is_url {
        split_url(conn)
    } else {
        Ok(split_key_values(conn))
    }
}

/// The name of [`TAKEN`] that `key` is, if any.
fn taken(key: &str) -> Option<&'static str> {
    TAKEN.iter().copied().find(|name| *name == key)
}

fn split_url(url: &str) -> Result<Split, NotUtf8> {
    // As tokio-postgres reads it: the user info ends at the first `@`, and the query starts
    // at the first `?` after it.
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |at| after_scheme + at + 1);
    let Some(question) = url[authority..].find('?').map(|q| authority + q) else {
        return Ok(Split {
            rest: url.to_owned(),
            taken: Vec::new(),
        });
    };
    let mut kept = Vec::new();
    let mut found = Vec::new();
    for pair in url[question + 1..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded_key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
        match taken(&decoded_key) {
            Some(name) if pair.contains('=') => {
                let value = percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|_| NotUtf8(name.to_owned()))?;
                found.push((name, value.into_owned()));
            }
            _ => kept.push(pair),
        }
    }
    let mut rest = url[..question].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok(Split { rest, taken: found })
}

/// One `key = value` of a key/value string: where it is, its key and its decoded value.
struct Pair<'a> {
    span: Range<usize>,
    key: &'a str,
    value: String,
}

fn split_key_values(conn: &str) -> Split {
    let mut kept: Vec<&str> = Vec::new();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(pair) = next_pair(conn, at) {
        at = pair.span.end;
        match taken(pair.key) {
            Some(name) => found.push((name, pair.value)),
            None => kept.push(&conn[pair.span]),
        }
    }
    // What does not parse is left as it is, for tokio-postgres to report.
    let tail = conn[at..].trim();
    if !tail.is_empty() {
        kept.push(tail);
    }
    Split {
        rest: kept.join(" "),
        taken: found,
    }
}

/// The pair starting at byte `from` of `s` (after whitespace), parsed as tokio-postgres and
/// libpq do; `None` at the end of `s` or where it does not parse.
fn next_pair(s: &str, from: usize) -> Option<Pair<'_>> {
    let skip_ws = |i: usize| {
        s[i..]
            .find(|c: char| !c.is_whitespace())
            .map_or(s.len(), |n| i + n)
    };
    let start = skip_ws(from);
    let key_end = s[start..]
        .find(|c: char| c.is_whitespace() || c == '=')
        .map_or(s.len(), |n| start + n);
    if key_end == start {
        return None;
    }
    let equals = skip_ws(key_end);
    if !s[equals..].starts_with('=') {
        return None;
    }
    let value_start = skip_ws(equals + 1);
    let mut value = String::new();
    let mut chars = s[value_start..].char_indices();
    let quoted = s[value_start..].starts_with('\'');
    if quoted {
        chars.next();
    }
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
            '\'' if quoted => {
                end = Some(value_start + i + 1);
                break;
            }
            c if c.is_whitespace() && !quoted => {
                end = Some(value_start + i);
                break;
            }
            c => value.push(c),
        }
    }
    let end = match end {
        Some(end) => end,
        // An unterminated quote does not parse.
        None if quoted => return None,
        None => s.len(),
    };
    if !quoted && value.is_empty() {
        return None;
    }
    Some(Pair {
        span: start..end,
        key: &s[start..key_end],
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::{NotUtf8, Split, split};

    fn taken(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    #[test]
    fn a_url_loses_its_tls_parameters_and_keeps_the_others_as_written() {
        for (url, rest, found) in [
            (
                "postgres://alice:p%40ss@db:5432/shop?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5",
                "postgres://alice:p%40ss@db:5432/shop?connect_timeout=5",
                taken(&[("sslmode", "verify-full"), ("sslrootcert", "/etc/ca.pem")]),
            ),
            (
                "postgresql://db/shop?connect_timeout=5&sslmode=require",
                "postgresql://db/shop?connect_timeout=5",
                taken(&[("sslmode", "require")]),
            ),
            (
                "postgres://db/shop?sslsni=0&sslmode=prefer&sslmode=verify-ca",
                "postgres://db/shop",
                taken(&[
                    ("sslsni", "0"),
                    ("sslmode", "prefer"),
                    ("sslmode", "verify-ca"),
                ]),
            ),
            // A `?` in the password is the password's, not the query's.
            (
                "postgres://alice:what?sslmode=disable@db/shop?sslmode=require",
                "postgres://alice:what?sslmode=disable@db/shop",
                taken(&[("sslmode", "require")]),
            ),
            ("postgres://db/shop", "postgres://db/shop", vec![]),
            (
                "postgres://db/shop?password=secret&sslcert=x",
                "postgres://db/shop?password=secret&sslcert=x",
                vec![],
            ),
            // Not a parameter (no `=`): left for tokio-postgres to refuse.
            (
                "postgres://db/shop?sslmode",
                "postgres://db/shop?sslmode",
                vec![],
            ),
        ] {
            assert_eq!(
                split(url),
                Ok(Split {
                    rest: rest.to_owned(),
                    taken: found
                }),
                "{url}"
            );
        }
    }

    #[test]
    fn a_url_parameter_that_is_not_utf8_is_refused_by_name() {
        assert_eq!(
            split("postgres://db/shop?sslrootcert=%FF"),
            Err(NotUtf8("sslrootcert".into()))
        );
    }

    #[test]
    fn a_key_value_string_loses_its_tls_parameters() {
        for (conn, rest, found) in [
            (
                "host=db sslmode=verify-full user=alice sslrootcert=/etc/ca.pem",
                "host=db user=alice",
                taken(&[("sslmode", "verify-full"), ("sslrootcert", "/etc/ca.pem")]),
            ),
            // Spaces around `=`, quoted values with escapes, tabs and newlines.
            (
                "host = db\tsslrootcert = '/my certs/it\\'s.pem'\npassword='a b'  sslmode= require",
                "host = db password='a b'",
                taken(&[
                    ("sslrootcert", "/my certs/it's.pem"),
                    ("sslmode", "require"),
                ]),
            ),
            (
                "sslrootcert=/a\\ b.pem",
                "",
                taken(&[("sslrootcert", "/a b.pem")]),
            ),
            ("host=db port=5432", "host=db port=5432", vec![]),
            // Where it stops parsing, the rest is left as written for tokio-postgres.
            (
                "sslmode=verify-ca password='unterminated sslmode=disable",
                "password='unterminated sslmode=disable",
                taken(&[("sslmode", "verify-ca")]),
            ),
            (
                "sslmode=require host",
                "host",
                taken(&[("sslmode", "require")]),
            ),
            ("", "", vec![]),
        ] {
            assert_eq!(
                split(conn),
                Ok(Split {
                    rest: rest.to_owned(),
                    taken: found
                }),
                "{conn}"
            );
        }
    }

    #[test]
    fn what_is_left_still_parses_as_tokio_postgres_reads_it() {
        for conn in [
            "postgres://alice:secret@db:5432/shop?sslmode=verify-full&connect_timeout=5",
            "host=db user=alice password='a b' sslmode=verify-full sslrootcert=/x.pem",
        ] {
            let rest = split(conn).unwrap().rest;
            let config: tokio_postgres::Config = rest.parse().unwrap();
            assert_eq!(config.get_user(), Some("alice"), "{rest}");
        }
    }
}
