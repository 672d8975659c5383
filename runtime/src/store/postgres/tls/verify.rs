//! How the server's certificate is checked: not at all (`prefer`, `require`), against a CA
//! (`verify-ca`), or against a CA and the host name (`verify-full`). The handshake's
//! signatures are always checked, so that the server holds the key of the certificate it
//! presents.
//!
//! A refusal says what failed in the words of [`TlsError`]: the CA file that did not sign
//! the certificate, the host name it is not valid for.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, RootCertStore};

use super::{Roots, TlsError};

/// Accepts any certificate the server presents (`prefer`, and `require` without
/// `sslrootcert`): the connection is encrypted, and nothing says whose server it is.
#[derive(Debug)]
pub(super) struct AnyCertificate {
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

/// Accepts a certificate signed by one of `roots` (`verify-ca`), and valid for the host name
/// connected to if `check_name` (`verify-full`).
#[derive(Debug)]
pub(super) struct SignedBy {
    pub(super) roots: Arc<RootCertStore>,
    /// Where `roots` came from, named in refusals.
    pub(super) source: Roots,
    pub(super) check_name: bool,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

/// `error` as rustls carries it to the handshake's caller: its message is ours.
fn refused(error: TlsError) -> Error {
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

impl ServerCertVerifier for SignedBy {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )
        .map_err(|err| match err {
            // No root issued it, or one of the same name with another key did.
            Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            ) => refused(TlsError::NotSigned {
                by: self.source.clone(),
            }),
            other => other,
        })?;
        if self.check_name {
            verify_server_name(&cert, server_name).map_err(|err| match err {
                Error::InvalidCertificate(
                    wrong @ (CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. }),
                ) => refused(TlsError::WrongHost {
                    host: server_name.to_str().into_owned(),
                    detail: wrong.to_string(),
                }),
                other => other,
            })?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
