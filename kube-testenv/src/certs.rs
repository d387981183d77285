//! Certificates for a local control plane, generated fresh for every start.
//!
//! Guarantees: the serving certificate is valid for `localhost`, `127.0.0.1`
//! and `::1` and chains to [`Certs::ca_pem`]; the admin client certificate has
//! CN `kube-testenv-admin` and O `system:masters` (so RBAC allows it
//! everything) and chains to a separate client CA given to kube-apiserver as
//! `--client-ca-file`; the service-account key pair is ECDSA P-256, which
//! kube-apiserver accepts for signing tokens. Nothing is written to disk here:
//! [`crate::ControlPlane`] decides where the files go.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::error::{Error, Result};

/// PEM material for one control plane.
pub struct Certs {
    /// The CA that signed the serving certificate (what clients trust).
    pub ca_pem: String,
    /// kube-apiserver's serving certificate.
    pub serving_cert_pem: String,
    /// kube-apiserver's serving key.
    pub serving_key_pem: String,
    /// The CA kube-apiserver trusts for client certificates.
    pub client_ca_pem: String,
    /// The admin user's client certificate (group `system:masters`).
    pub admin_cert_pem: String,
    /// The admin user's private key (PKCS#8).
    pub admin_key_pem: String,
    /// kube-controller-manager's client certificate (user
    /// `system:kube-controller-manager`, group `system:masters`).
    pub controller_manager_cert_pem: String,
    /// Its private key (PKCS#8).
    pub controller_manager_key_pem: String,
    /// Client certificate for kube-scheduler (`system:kube-scheduler`, group
    /// `system:masters`).
    pub scheduler_cert_pem: String,
    /// Its key.
    pub scheduler_key_pem: String,
    /// Client certificate for KWOK's controller (`kube-testenv-kwok`, group
    /// `system:masters`).
    pub kwok_cert_pem: String,
    /// Its key.
    pub kwok_key_pem: String,
    /// Client certificate kube-apiserver presents to the kubelet API
    /// (`--kubelet-client-certificate`; user `kube-apiserver-kubelet-client`).
    pub kubelet_client_cert_pem: String,
    /// Its key.
    pub kubelet_client_key_pem: String,
    /// The service-account signing key (PKCS#8, ECDSA P-256).
    pub sa_key_pem: String,
    /// Its public half, for `--service-account-key-file`.
    pub sa_pub_pem: String,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs").finish_non_exhaustive()
    }
}

fn key(what: &'static str) -> Result<KeyPair> {
    KeyPair::generate().map_err(|source| Error::Certs { what, source })
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params
}

impl Certs {
    /// Generates a complete, fresh set.
    pub fn generate() -> Result<Self> {
        let err = |what| move |source| Error::Certs { what, source };

        let ca_key = key("serving CA key")?;
        let serving_ca = ca_params("kube-testenv serving CA");
        let ca_cert = serving_ca.self_signed(&ca_key).map_err(err("serving CA"))?;
        let ca = Issuer::new(serving_ca, ca_key);

        let serving_key = key("serving key")?;
        let mut serving =
            CertificateParams::new(vec!["localhost".to_string()]).map_err(err("serving cert"))?;
        serving
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        serving
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving
            .signed_by(&serving_key, &ca)
            .map_err(err("serving cert"))?;

        let client_ca_key = key("client CA key")?;
        let client_ca_params = ca_params("kube-testenv client CA");
        let client_ca_cert = client_ca_params
            .self_signed(&client_ca_key)
            .map_err(err("client CA"))?;
        let client_ca = Issuer::new(client_ca_params, client_ca_key);

        let client = |user: &str, key: &KeyPair, what: &'static str| {
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, user);
            dn.push(DnType::OrganizationName, "system:masters");
            params.distinguished_name = dn;
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params.signed_by(key, &client_ca).map_err(err(what))
        };
        let admin_key = key("admin key")?;
        let admin_cert = client("kube-testenv-admin", &admin_key, "admin cert")?;
        let cm_key = key("controller-manager key")?;
        let cm_cert = client(
            "system:kube-controller-manager",
            &cm_key,
            "controller-manager cert",
        )?;

        let scheduler_key = key("scheduler key")?;
        let scheduler_cert = client("system:kube-scheduler", &scheduler_key, "scheduler cert")?;
        let kwok_key = key("kwok key")?;
        let kwok_cert = client("kube-testenv-kwok", &kwok_key, "kwok cert")?;
        let kubelet_client_key = key("kubelet client key")?;
        let kubelet_client_cert = client(
            "kube-apiserver-kubelet-client",
            &kubelet_client_key,
            "kubelet client cert",
        )?;

        let sa_key = key("service-account key")?;

        Ok(Self {
            ca_pem: ca_cert.pem(),
            serving_cert_pem: serving_cert.pem(),
            serving_key_pem: serving_key.serialize_pem(),
            client_ca_pem: client_ca_cert.pem(),
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            controller_manager_cert_pem: cm_cert.pem(),
            controller_manager_key_pem: cm_key.serialize_pem(),
            scheduler_cert_pem: scheduler_cert.pem(),
            scheduler_key_pem: scheduler_key.serialize_pem(),
            kwok_cert_pem: kwok_cert.pem(),
            kwok_key_pem: kwok_key.serialize_pem(),
            kubelet_client_cert_pem: kubelet_client_cert.pem(),
            kubelet_client_key_pem: kubelet_client_key.serialize_pem(),
            sa_pub_pem: sa_key.public_key_pem(),
            sa_key_pem: sa_key.serialize_pem(),
        })
    }
}
