//! rustls configuration from a [`kube_config::Config`].
//!
//! Guarantees: the server is verified against the kubeconfig's CA bundle,
//! and only against it, when one is configured; without one, against the
//! platform's trusted roots, as kubectl (Go's `crypto/x509`) does — read by
//! rustls-native-certs, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`
//! (once per process: the roots are cached); `tls-server-name` replaces
//! the host name in verification;
//! verification is skipped only when `insecure-skip-tls-verify` says so;
//! ALPN offers h2 then http/1.1, so that many watches share one connection
//! when the server speaks HTTP/2 — except for the client that opens
//! WebSocket upgrades (exec, attach, port-forward), which offers http/1.1
//! only: an upgrade is an HTTP/1.1 mechanism, and a connection that
//! negotiated h2 cannot carry it.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::{Error, Result};

/// A client certificate chain and key, in DER.
pub(crate) struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls config for `config`, presenting `identity` if any;
/// offering h2 in ALPN only when `offer_h2`.
pub(crate) fn client_config(
    config: &kube_config::Config,
    identity: Option<Identity>,
    offer_h2: bool,
) -> Result<rustls::ClientConfig> {
    let url = kube_config::redact_url(config.cluster_url.as_str()).into_owned();
    let tls_err = |message: String| Error::Tls {
        url: url.clone(),
        message,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?;

    // Plain http:// never does TLS; the verifier is never called.
    let plain_http = config.cluster_url.scheme() == "http";
    let verifier: Arc<dyn ServerCertVerifier> = if config.accept_invalid_certs || plain_http {
        Arc::new(AcceptAnything(provider()))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for der in config.root_certs.iter().flatten() {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| tls_err(format!("certificate-authority: {e}")))?;
        }
        let roots = if roots.is_empty() {
            let system = system_roots();
            if system.is_empty() {
                return Err(Error::Config(format!(
                    "cluster {url} has no certificate-authority, insecure-skip-tls-verify is not \
                     set and the platform has no trusted roots (see SSL_CERT_FILE, SSL_CERT_DIR): \
                     nothing to verify the server against"
                )));
            }
            system
        } else {
            Arc::new(roots)
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| tls_err(e.to_string()))?;
        match &config.tls_server_name {
            Some(name) => {
                let name = ServerName::try_from(name.clone())
                    .map_err(|e| Error::Config(format!("tls-server-name `{name}`: {e}")))?;
                Arc::new(FixedName {
                    inner: webpki,
                    name,
                })
            }
            None => webpki,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut tls = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|e| tls_err(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = if offer_h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(tls)
}

/// The platform's trusted roots, read once per process (an unreadable or
/// unparsable certificate among them is skipped, as Go does).
pub(crate) fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!(error = %e, "skipping a system root certificate source");
            }
            let mut roots = rustls::RootCertStore::empty();
            let (added, skipped) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, skipped, "loaded the platform's trusted roots");
            Arc::new(roots)
        })
        .clone()
}

/// Verifies against a configured name instead of the URL's host.
#[derive(Debug)]
struct FixedName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for FixedName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure-skip-tls-verify: true`: any certificate, still a real handshake.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
