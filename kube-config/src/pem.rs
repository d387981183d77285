//! TLS material: CA bundles and client identities, parsed from PEM.
//!
//! Guarantees:
//!
//! - A CA bundle yields the DER of *every* `CERTIFICATE` block it holds, in
//!   order; a bundle with none is an error.
//! - A [`ClientIdentity`] is validated when it is built: the certificate PEM
//!   holds at least one certificate (the chain, leaf first) and the key PEM
//!   holds an RSA (PKCS#1), PKCS#8 or SEC1 (EC) private key. So its DER
//!   accessors cannot fail later.
//! - Errors name where the PEM came from (a file, or a `*-data` field of a
//!   user) and never include the key.

use std::fmt;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use crate::{Error, SecretBytes};

/// Describes a PEM syntax error without quoting the content.
fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "missing `-----END {}-----` line",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { .. } => "malformed `-----BEGIN ...-----` line".to_owned(),
        E::Base64Decode(detail) => format!("invalid base64 in a PEM block: {detail}"),
        E::NoItemsFound => "no PEM block found".to_owned(),
        other => other.to_string(),
    }
}

/// Parses every certificate of a PEM bundle into DER.
pub(crate) fn parse_cert_bundle(
    pem: &[u8],
    what: &'static str,
    origin: &str,
) -> Result<Vec<Vec<u8>>, Error> {
    let bad = |reason: String| Error::BadPem {
        what,
        origin: origin.to_owned(),
        reason,
    };
    let mut out = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| bad(pem_error(&e)))?;
        out.push(cert.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err(bad("no CERTIFICATE block found".to_owned()));
    }
    Ok(out)
}

/// The encoding of a client private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyFormat {
    /// `RSA PRIVATE KEY` (PKCS#1).
    Pkcs1,
    /// `PRIVATE KEY` (PKCS#8, any algorithm).
    Pkcs8,
    /// `EC PRIVATE KEY` (SEC1).
    Sec1,
}

/// A TLS client certificate chain and its private key, validated.
///
/// From a kubeconfig user's `client-certificate(-data)` and
/// `client-key(-data)`, or from an exec plugin's `clientCertificateData` and
/// `clientKeyData`. `Debug` does not show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    cert_pem: Vec<u8>,
    key_pem: SecretBytes,
    chain_der: Vec<Vec<u8>>,
    key_der: SecretBytes,
    key_format: KeyFormat,
}

impl ClientIdentity {
    /// Builds an identity from a PEM certificate chain and a PEM private key.
    ///
    /// Errors if the chain holds no certificate or the key is not an RSA
    /// (PKCS#1), PKCS#8 or EC (SEC1) private key.
    pub fn from_pem(
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Result<Self, Error> {
        Self::from_pem_with_origin(
            cert_pem.into(),
            "client certificate PEM",
            key_pem.into(),
            "client key PEM",
        )
    }

    pub(crate) fn from_pem_with_origin(
        cert_pem: Vec<u8>,
        cert_origin: &str,
        key_pem: Vec<u8>,
        key_origin: &str,
    ) -> Result<Self, Error> {
        let chain_der = parse_cert_bundle(&cert_pem, "client certificate", cert_origin)?;
        let bad_key = |reason: String| Error::BadPem {
            what: "client key",
            origin: key_origin.to_owned(),
            reason,
        };
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                bad_key("no RSA PRIVATE KEY, PRIVATE KEY or EC PRIVATE KEY block found".to_owned())
            }
            other => bad_key(pem_error(&other)),
        })?;
        let (key_format, der) = match &key {
            PrivateKeyDer::Pkcs1(k) => (KeyFormat::Pkcs1, k.secret_pkcs1_der().to_vec()),
            PrivateKeyDer::Pkcs8(k) => (KeyFormat::Pkcs8, k.secret_pkcs8_der().to_vec()),
            PrivateKeyDer::Sec1(k) => (KeyFormat::Sec1, k.secret_sec1_der().to_vec()),
            _ => return Err(bad_key("unsupported private key type".to_owned())),
        };
        Ok(Self {
            cert_pem,
            key_pem: SecretBytes::new(key_pem),
            chain_der,
            key_der: SecretBytes::new(der),
            key_format,
        })
    }

    /// The certificate chain as PEM, as given (leaf first).
    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// The private key as PEM, as given.
    pub fn key_pem(&self) -> &SecretBytes {
        &self.key_pem
    }

    /// The certificate chain as DER, leaf first (never empty).
    pub fn cert_chain_der(&self) -> Vec<CertificateDer<'static>> {
        self.chain_der
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect()
    }

    /// The private key as DER, in its original encoding.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        let der = self.key_der.expose().to_vec();
        match self.key_format {
            KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
            KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
        }
    }

    /// How the private key is encoded.
    pub fn key_format(&self) -> KeyFormat {
        self.key_format
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain_der.len())
            .field("key_format", &self.key_format)
            .field("key", &self.key_pem)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &[u8] = include_bytes!("../tests/fixtures/ca-bundle.crt");
    const CERT: &[u8] = include_bytes!("../tests/fixtures/client-ec.crt");
    const EC_KEY: &[u8] = include_bytes!("../tests/fixtures/client-ec.key");
    const RSA1: &[u8] = include_bytes!("../tests/fixtures/client-rsa-pkcs1.key");
    const RSA8: &[u8] = include_bytes!("../tests/fixtures/client-rsa-pkcs8.key");

    #[test]
    fn bundle_yields_every_cert() {
        let certs = parse_cert_bundle(CA, "certificate authority", "x").expect("bundle");
        assert_eq!(certs.len(), 2);
        let err = parse_cert_bundle(b"junk", "certificate authority", "file /ca").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid certificate authority in file /ca: no CERTIFICATE block found"
        );
        let err = parse_cert_bundle(
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            "certificate authority",
            "file /ca",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid certificate authority in file /ca: "),
            "{err}"
        );
    }

    #[test]
    fn identity_key_formats() {
        for (key, fmt) in [
            (EC_KEY, KeyFormat::Sec1),
            (RSA1, KeyFormat::Pkcs1),
            (RSA8, KeyFormat::Pkcs8),
        ] {
            let id = ClientIdentity::from_pem(CERT, key).expect("identity");
            assert_eq!(id.key_format(), fmt);
            assert_eq!(id.cert_chain_der().len(), 1);
            assert!(!id.key_der().secret_der().is_empty());
            assert_eq!(id.cert_pem(), CERT);
            assert_eq!(id.key_pem().expose(), key);
            let dbg = format!("{id:?}");
            assert!(!dbg.contains("PRIVATE"), "{dbg}");
        }
    }

    #[test]
    fn identity_rejects_bad_key() {
        let err = ClientIdentity::from_pem(CERT, CERT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid client key in client key PEM: no RSA PRIVATE KEY, PRIVATE KEY or EC PRIVATE KEY block found"
        );
        let err = ClientIdentity::from_pem(EC_KEY, EC_KEY).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid client certificate in client certificate PEM: no CERTIFICATE block found"
        );
    }
}
