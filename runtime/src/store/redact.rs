//! Connection strings without their passwords, for messages, logs and `Debug` output.

/// What a password is replaced with.
const HIDDEN: &str = "***";

/// `conn` with every password in it replaced by `***`, so that it can be printed or logged:
/// the password of a URL's user info (`postgres://alice:***@host/db`), and the value of
/// every `password` parameter, in a URL's query (`?password=***`) or in a libpq key/value
/// string (`host=db password=***`, quoted values included). Anything else (a file path, a
/// URL without a password) comes back as it is.
///
/// ```
/// use hookflow_runtime::store::redact;
/// assert_eq!(redact("postgres://alice:TopSecret123@db/shop"), "postgres://alice:***@db/shop");
/// assert_eq!(redact("host=db user=alice password=TopSecret123"), "host=db user=alice password=***");
/// assert_eq!(redact("runs.db"), "runs.db");
/// ```
pub fn redact(conn: &str) -> String {
    let scheme_end = conn.find("://").filter(|&i| {
        i > 0
            && conn[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let Some(scheme_end) = scheme_end else {
        return redact_params(conn, false);
    };
    let start = scheme_end + 3;
    let rest = &conn[start..];
    let mut out = String::with_capacity(conn.len());
    out.push_str(&conn[..start]);
    // The user info ends at the last `@`: a password with an unencoded `@` in it is hidden
    // whole (too much is hidden rather than too little).
    let tail = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..=colon]);
                    out.push_str(HIDDEN);
                }
                None => out.push_str(userinfo),
            }
            &rest[at..]
        }
        None => rest,
    };
    out.push_str(&redact_params(tail, true));
    out
}

/// `s` with the value of each `password` parameter hidden: `key=value` pairs separated by
/// whitespace (a libpq key/value string, where values may be quoted), or by `&` (a URL's
/// query, `in_url`).
fn redact_params(s: &str, in_url: bool) -> String {
    const KEY: &[u8] = b"password";
    let bytes = s.as_bytes();
    let len = bytes.len();
    let space = |b: u8| !in_url && b.is_ascii_whitespace();
    let mut out = String::with_capacity(len);
    let (mut copied, mut i) = (0, 0);
    while i + KEY.len() <= len {
        let boundary = i == 0 || matches!(bytes[i - 1], b'?' | b'&' | b';') || space(bytes[i - 1]);
        if !boundary || !bytes[i..i + KEY.len()].eq_ignore_ascii_case(KEY) {
            i += 1;
            continue;
        }
        let mut j = i + KEY.len();
        while j < len && space(bytes[j]) {
            j += 1;
        }
        if bytes.get(j) != Some(&b'=') {
            i += 1;
            continue;
        }
        j += 1;
        while j < len && space(bytes[j]) {
            j += 1;
        }
        let mut end = j;
        if !in_url && bytes.get(j) == Some(&b'\'') {
            // A quoted value: up to the next quote that is not escaped with a backslash.
            end += 1;
            while end < len {
                match bytes[end] {
                    b'\\' => end += 2,
                    b'\'' => {
                        end += 1;
                        break;
                    }
                    _ => end += 1,
                }
            }
        } else {
            while end < len
                && !(if in_url {
                    matches!(bytes[end], b'&' | b'#')
                } else {
                    bytes[end].is_ascii_whitespace()
                })
            {
                end += 1;
            }
        }
        let mut end = end.min(len);
        while !s.is_char_boundary(end) {
            end += 1;
        }
        out.push_str(&s[copied..j]);
        out.push_str(HIDDEN);
        copied = end;
        i = end;
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn url_passwords_are_hidden() {
        for (conn, shown) in [
            (
                "postgres://alice:TopSecret123@host/db",
                "postgres://alice:***@host/db",
            ),
            (
                "postgresql://alice:TopSecret123@db.example:5432,db2:5433/shop?sslmode=disable",
                "postgresql://alice:***@db.example:5432,db2:5433/shop?sslmode=disable",
            ),
            // An unencoded `@` or `/` in the password: all of it is hidden.
            (
                "postgres://alice:Top@Sec/ret123@host/db",
                "postgres://alice:***@host/db",
            ),
            ("postgres://alice:@host/db", "postgres://alice:***@host/db"),
            (
                "postgres://alice@host/db?password=TopSecret123&connect_timeout=1",
                "postgres://alice@host/db?password=***&connect_timeout=1",
            ),
            (
                "postgres://host/db?connect_timeout=1&PASSWORD=TopSecret123#frag",
                "postgres://host/db?connect_timeout=1&PASSWORD=***#frag",
            ),
        ] {
            assert_eq!(redact(conn), shown);
            assert!(!redact(conn).contains("Secret"), "{conn}");
        }
    }

    #[test]
    fn key_value_passwords_are_hidden() {
        for (conn, shown) in [
            (
                "host=db user=alice password=TopSecret123 connect_timeout=5",
                "host=db user=alice password=*** connect_timeout=5",
            ),
            ("password=TopSecret123", "password=***"),
            (
                "host=db password = 'Top Secret\\' 123' dbname=shop",
                "host=db password = *** dbname=shop",
            ),
            ("password='unterminated Secret", "password=***"),
            (
                "host=db\tpassword=Secret\nuser=x",
                "host=db\tpassword=***\nuser=x",
            ),
            ("password='pässwörd\\é' x=1", "password=*** x=1"),
            ("password='Secret\\", "password=***"),
        ] {
            assert_eq!(redact(conn), shown);
        }
    }

    #[test]
    fn what_has_no_password_is_unchanged() {
        for conn in [
            "runs.db",
            "/var/lib/app/user:name@host/runs.db",
            "postgres://alice@host/db",
            "postgres://host:5432/db?sslmode=disable",
            "host=db user=alice mypassword=visible",
            "password",
            "",
        ] {
            assert_eq!(redact(conn), conn);
        }
    }
}
