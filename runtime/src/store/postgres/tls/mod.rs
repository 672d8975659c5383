//! TLS to PostgreSQL with rustls (the ring provider; no OpenSSL): the url's `sslmode`,
//! `sslrootcert` and `sslsni` read as libpq reads them, and the connector every connection
//! of the store opens with (the pool's, the committers', the `LISTEN`ing one).
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default) | if the server accepts it, else a plain connection | not checked |
//! | `require` | always | not checked; with `sslrootcert`, checked against that CA (as `verify-ca`, as libpq does) |
//! | `verify-ca` | always | signed by the CA of `sslrootcert`, or by one of the system's roots |
//! | `verify-full` | always | as `verify-ca`, and valid for the host name connected to |
//!
//! `sslrootcert=PATH` names a PEM file of CA certificates; `sslrootcert=system` (libpq 16's
//! spelling) the system's roots, which `verify-ca` and `verify-full` also use without
//! `sslrootcert` (libpq would read `~/.postgresql/root.crt`: this store never does). With
//! `sslrootcert=system` and no `sslmode`, the mode is `verify-full`; a mode that checks less
//! than `verify-ca` is refused with it, as libpq refuses it. `sslsni=0` sends no host name
//! in the handshake. Client certificates (`sslcert`, `sslkey`) are not supported:
//! tokio-postgres refuses them as unknown options.

mod params;
mod verify;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use self::verify::{AnyCertificate, SignedBy};
use super::errors::pg;
use crate::store::StoreError;

/// The connector of the store's connections.
pub(super) type Connector = MakeRustlsConnect;

/// libpq's `sslmode`: whether to use TLS, and what to check of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server accepts it, no check of its certificate.
    Prefer,
    /// TLS, no check of the certificate (unless `sslrootcert` names a CA).
    Require,
    /// TLS, a certificate signed by the CA.
    VerifyCa,
    /// TLS, a certificate signed by the CA and valid for the host name.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, TlsError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(TlsError::UnknownMode(other.to_owned())),
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// The CA certificates a server's certificate is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Roots {
    /// A PEM file's (`sslrootcert=PATH`).
    File(PathBuf),
    /// The system's (`sslrootcert=system`, or no `sslrootcert`).
    System,
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::File(path) => write!(f, "the CA in {}", path.display()),
            Roots::System => f.write_str("any of the system's root CAs"),
        }
    }
}

/// What went wrong with TLS: the url's TLS parameters, the CA certificates, or the server's
/// certificate or answer. No message holds the url or its password.
#[derive(Debug, thiserror::Error)]
pub(super) enum TlsError {
    /// An `sslmode` libpq does not know either.
    #[error("unknown sslmode `{0}`: expected disable, prefer, require, verify-ca or verify-full")]
    UnknownMode(String),
    /// An `sslsni` other than 0 or 1.
    #[error("sslsni must be 0 or 1, not `{0}`")]
    InvalidSni(String),
    /// `sslrootcert=system` with a mode that checks no certificate.
    #[error("sslmode={0} may not be used with sslrootcert=system: use sslmode=verify-full")]
    WeakModeWithSystemRoots(SslMode),
    /// A TLS parameter of the url that does not decode.
    #[error(transparent)]
    NotUtf8(#[from] params::NotUtf8),
    /// The CA file cannot be read.
    #[error("cannot read the CA file {path}: {source}")]
    CaUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file holds no PEM certificate, or one that cannot be used.
    #[error("the CA file {path} holds {problem}")]
    CaUnusable {
        /// The file.
        path: PathBuf,
        /// What it holds instead.
        problem: String,
    },
    /// The system's store holds no usable root.
    #[error(
        "found no root certificate in the system's store ({0}): name a CA file with sslrootcert"
    )]
    NoSystemRoots(String),
    /// rustls's ring provider cannot be set up (never with the provider this crate builds).
    #[error("cannot set up rustls: {0}")]
    Provider(String),
    /// The server's certificate was not issued by the roots checked against.
    #[error("the server's certificate is not signed by {by}")]
    NotSigned {
        /// The roots.
        by: Roots,
    },
    /// The server's certificate is not valid for the host name connected to.
    #[error(
        "the server's certificate is not valid for the host name `{host}` (sslmode=verify-full checks it): {detail}"
    )]
    WrongHost {
        /// The host name.
        host: String,
        /// rustls's words, with the names the certificate holds.
        detail: String,
    },
}

/// The TLS settings of a url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsSettings {
    pub(super) mode: SslMode,
    /// The roots checked against, when the mode checks the certificate.
    pub(super) roots: Option<Roots>,
    /// Whether the host name is sent in the handshake (`sslsni`).
    pub(super) sni: bool,
}

impl TlsSettings {
    /// The settings of the parameters `taken` from a url (the last of each counts).
    fn from_params(taken: &[(&'static str, String)]) -> Result<Self, TlsError> {
        let last = |name: &str| {
            taken
                .iter()
                .rev()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.as_str())
        };
        let root_cert = last("sslrootcert").filter(|path| !path.is_empty());
        let system = root_cert == Some("system");
        let mode = match last("sslmode") {
            Some(mode) => SslMode::parse(mode)?,
            None if system => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if system && matches!(mode, SslMode::Disable | SslMode::Prefer | SslMode::Require) {
            return Err(TlsError::WeakModeWithSystemRoots(mode));
        }
        let sni = match last("sslsni") {
            None | Some("1") => true,
            Some("0") => false,
            Some(other) => return Err(TlsError::InvalidSni(other.to_owned())),
        };
        let roots = match (mode, root_cert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => None,
            (_, Some("system") | None) => Some(Roots::System),
            (_, Some(path)) => Some(Roots::File(PathBuf::from(path))),
        };
        Ok(TlsSettings { mode, roots, sni })
    }

    /// The mode tokio-postgres is told: whether TLS is used (it checks no certificate).
    fn tokio_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Tokio;
        match self.mode {
            SslMode::Disable => Tokio::Disable,
            SslMode::Prefer => Tokio::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Tokio::Require,
        }
    }

    /// The connector: rustls with ring, the certificate check of the mode, ALPN
    /// `postgresql` (PostgreSQL 17's direct TLS needs it; earlier servers ignore it).
    ///
    /// # Errors
    /// When the CA certificates cannot be loaded.
    fn connector(&self) -> Result<Connector, TlsError> {
        let provider = rustls::crypto::ring::default_provider();
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match &self.roots {
            None => Arc::new(AnyCertificate { algorithms }),
            Some(roots) => Arc::new(SignedBy {
                roots: Arc::new(load(roots)?),
                source: roots.clone(),
                check_name: self.mode == SslMode::VerifyFull,
                algorithms,
            }),
        };
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Provider(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.enable_sni = self.sni;
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(MakeRustlsConnect::new(config))
    }

    /// `err`, from connecting with these settings, in clearer words where they can be
    /// found: a server that refuses TLS under a mode that requires it, a server that refuses
    /// a plain connection under `disable`.
    pub(super) fn explain(&self, err: StoreError) -> StoreError {
        let StoreError::Unavailable { context, message } = err else {
            return err;
        };
        // tokio-postgres's words when the server answers no to TLS.
        let message = if message.contains("server does not support TLS") {
            format!(
                "the server does not accept TLS connections, and sslmode={} requires TLS ({message})",
                self.mode
            )
        // PostgreSQL's when pg_hba.conf only has `hostssl` lines for the client.
        } else if self.mode == SslMode::Disable && message.contains("no encryption") {
            format!(
                "{message} (the server accepts this client over TLS only, and the url says sslmode=disable)"
            )
        } else {
            message
        };
        StoreError::Unavailable { context, message }
    }
}

/// The words of a certificate this store's check refused (a [`TlsError`] that rustls carried
/// through the handshake), if `source`, the source of a tokio-postgres error, is one.
pub(super) fn refusal(source: &(dyn std::error::Error + 'static)) -> Option<String> {
    let io = source.downcast_ref::<std::io::Error>()?;
    match io.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            Some(other.0.downcast_ref::<TlsError>()?.to_string())
        }
        _ => None,
    }
}

/// The roots of `roots`.
fn load(roots: &Roots) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let pem = std::fs::read(path).map_err(|source| TlsError::CaUnreadable {
                path: path.clone(),
                source,
            })?;
            let unusable = |problem: String| TlsError::CaUnusable {
                path: path.clone(),
                problem,
            };
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| unusable(format!("malformed PEM: {e}")))?;
                store
                    .add(cert)
                    .map_err(|e| unusable(format!("a certificate that cannot be used: {e}")))?;
            }
            if store.is_empty() {
                return Err(unusable(
                    "no certificate (no PEM `BEGIN CERTIFICATE` block)".into(),
                ));
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                let why = if errors.is_empty() {
                    "it is empty".to_owned()
                } else {
                    errors.join("; ")
                };
                return Err(TlsError::NoSystemRoots(why));
            }
        }
    }
    Ok(store)
}

/// A store's connection settings: the url's, less its TLS parameters, for tokio-postgres,
/// with the TLS mode set; the connector all its connections use; the TLS settings.
///
/// # Errors
/// [`StoreError::Unavailable`] when the url does not parse, its TLS parameters are not
/// valid, or the CA certificates cannot be loaded. No error holds the url's password.
pub(super) fn configure(
    url: &str,
) -> Result<(tokio_postgres::Config, Connector, TlsSettings), StoreError> {
    let invalid = |context: &str| {
        let context = context.to_owned();
        move |err: TlsError| StoreError::Unavailable {
            context,
            message: err.to_string(),
        }
    };
    let split = params::split(url)
        .map_err(TlsError::from)
        .map_err(invalid("read the url's TLS settings"))?;
    let settings =
        TlsSettings::from_params(&split.taken).map_err(invalid("read the url's TLS settings"))?;
    let mut config: tokio_postgres::Config = split.rest.parse().map_err(pg("parse the url"))?;
    config.ssl_mode(settings.tokio_mode());
    let connector = settings
        .connector()
        .map_err(invalid("load the CA certificates"))?;
    Ok((config, connector, settings))
}

#[cfg(test)]
mod tests;
