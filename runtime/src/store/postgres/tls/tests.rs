//! The url's TLS parameters read as libpq reads them, and the errors of the CA file.

use std::path::PathBuf;

use super::{Roots, SslMode, TlsError, TlsSettings, configure};
use crate::store::StoreError;

fn settings(url: &str) -> Result<TlsSettings, String> {
    match configure(url) {
        Ok((_, _, settings)) => Ok(settings),
        Err(err) => Err(err.to_string()),
    }
}

/// The settings of `params` (no CA file is read).
fn read(params: &[(&'static str, &str)]) -> Result<TlsSettings, TlsError> {
    let taken: Vec<_> = params.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    TlsSettings::from_params(&taken)
}

#[test]
fn each_sslmode_means_what_it_means_to_libpq() {
    let file = || Some(Roots::File(PathBuf::from("/ca.pem")));
    for (params, mode, roots) in [
        (vec![], SslMode::Prefer, None),
        (vec![("sslmode", "disable")], SslMode::Disable, None),
        (vec![("sslmode", "prefer")], SslMode::Prefer, None),
        (
            vec![("sslmode", "prefer"), ("sslrootcert", "/ca.pem")],
            SslMode::Prefer,
            None,
        ),
        (vec![("sslmode", "require")], SslMode::Require, None),
        // libpq: require with a root certificate checks it as verify-ca.
        (
            vec![("sslmode", "require"), ("sslrootcert", "/ca.pem")],
            SslMode::Require,
            file(),
        ),
        (
            vec![("sslmode", "verify-ca")],
            SslMode::VerifyCa,
            Some(Roots::System),
        ),
        (
            vec![("sslmode", "verify-full"), ("sslrootcert", "/ca.pem")],
            SslMode::VerifyFull,
            file(),
        ),
        (
            vec![("sslmode", "verify-full"), ("sslrootcert", "")],
            SslMode::VerifyFull,
            Some(Roots::System),
        ),
        (
            vec![("sslmode", "verify-ca"), ("sslrootcert", "system")],
            SslMode::VerifyCa,
            Some(Roots::System),
        ),
        // libpq 16: sslrootcert=system makes verify-full the default.
        (
            vec![("sslrootcert", "system")],
            SslMode::VerifyFull,
            Some(Roots::System),
        ),
        // The last one counts.
        (
            vec![("sslmode", "disable"), ("sslmode", "verify-full")],
            SslMode::VerifyFull,
            Some(Roots::System),
        ),
    ] {
        let read = read(&params).unwrap();
        assert_eq!((read.mode, read.roots), (mode, roots), "{params:?}");
        assert!(read.sni);
    }
    assert!(!read(&[("sslsni", "0")]).unwrap().sni);
}

#[test]
fn tokio_postgres_is_told_whether_to_use_tls() {
    use tokio_postgres::config::SslMode as Tokio;
    for (url, mode) in [
        ("postgres://db/shop", Tokio::Prefer),
        ("postgres://db/shop?sslmode=disable", Tokio::Disable),
        ("host=db sslmode=require", Tokio::Require),
        ("host=db sslmode=verify-full", Tokio::Require),
        ("postgres://db/shop?sslmode=verify-ca", Tokio::Require),
    ] {
        let (config, _, _) = configure(url).unwrap();
        assert_eq!(config.get_ssl_mode(), mode, "{url}");
    }
}

#[test]
fn wrong_tls_parameters_are_refused_with_what_is_wrong() {
    for (url, shown) in [
        (
            "postgres://alice:TopSecret@db/shop?sslmode=verify_full",
            "store unavailable: read the url's TLS settings: unknown sslmode `verify_full`: expected disable, prefer, require, verify-ca or verify-full",
        ),
        (
            "host=db password=TopSecret sslmode=allow",
            "store unavailable: read the url's TLS settings: unknown sslmode `allow`: expected disable, prefer, require, verify-ca or verify-full",
        ),
        (
            "postgres://db/shop?sslmode=require&sslrootcert=system",
            "store unavailable: read the url's TLS settings: sslmode=require may not be used with sslrootcert=system: use sslmode=verify-full",
        ),
        (
            "postgres://db/shop?sslsni=yes",
            "store unavailable: read the url's TLS settings: sslsni must be 0 or 1, not `yes`",
        ),
        (
            "postgres://db/shop?sslrootcert=%C3%28",
            "store unavailable: read the url's TLS settings: the url's parameter `sslrootcert` is not valid UTF-8 once percent-decoded",
        ),
    ] {
        assert_eq!(settings(url).unwrap_err(), shown, "{url}");
    }
}

#[test]
fn a_ca_file_that_cannot_be_read_or_holds_no_certificate_is_refused() {
    let dir = std::env::temp_dir().join(format!("hookflow-tls-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.pem");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let garbled = dir.join("garbled.pem");
    std::fs::write(
        &garbled,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let url = |path: &PathBuf| {
        format!(
            "postgres://alice:TopSecret@db/shop?sslmode=verify-full&sslrootcert={}",
            path.display()
        )
    };
    let missing_err = settings(&url(&missing)).unwrap_err();
    assert!(
        missing_err.starts_with(&format!(
            "store unavailable: load the CA certificates: cannot read the CA file {}: ",
            missing.display()
        )),
        "{missing_err}"
    );
    assert_eq!(
        settings(&url(&empty)).unwrap_err(),
        format!(
            "store unavailable: load the CA certificates: the CA file {} holds no certificate (no PEM `BEGIN CERTIFICATE` block)",
            empty.display()
        )
    );
    let garbled_err = settings(&url(&garbled)).unwrap_err();
    assert!(
        garbled_err.starts_with(&format!(
            "store unavailable: load the CA certificates: the CA file {} holds a certificate that cannot be used: ",
            garbled.display()
        )),
        "{garbled_err}"
    );
    // Under require without sslrootcert, and under prefer, no file is read.
    assert!(settings("postgres://db/shop?sslmode=require").is_ok());
    assert!(settings(&url(&missing).replace("verify-full", "prefer")).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refusals_of_tls_are_explained() {
    let under = |mode: &str, message: &str| {
        let settings = read(&[("sslmode", mode)]).unwrap();
        settings
            .explain(StoreError::Unavailable {
                context: "connect to the database".into(),
                message: message.into(),
            })
            .to_string()
    };
    assert_eq!(
        under(
            "verify-full",
            "error performing TLS handshake: server does not support TLS"
        ),
        "store unavailable: connect to the database: the server does not accept TLS connections, and sslmode=verify-full requires TLS (error performing TLS handshake: server does not support TLS)"
    );
    let hba = "db error: FATAL: no pg_hba.conf entry for host \"127.0.0.1\", user \"x\", database \"y\", no encryption";
    assert_eq!(
        under("disable", hba),
        format!(
            "store unavailable: connect to the database: {hba} (the server accepts this client over TLS only, and the url says sslmode=disable)"
        )
    );
    assert_eq!(
        under("prefer", "connection refused"),
        "store unavailable: connect to the database: connection refused"
    );
}
