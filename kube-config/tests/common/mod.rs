//! Helpers shared by the integration tests: temp dirs, fixtures, files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use base64::Engine;

/// The path of a fixture under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The bytes of a fixture.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

/// The base64 of a fixture, as a kubeconfig `*-data` field holds it.
pub fn fixture_b64(name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(fixture_bytes(name))
}

/// Writes `contents` to `dir/name`, creating parent directories; returns the path.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, contents).expect("write");
    path
}

/// Copies a fixture to `dir/name`.
pub fn copy_fixture(fixture_name: &str, dir: &Path, name: &str) -> PathBuf {
    write(dir, name, fixture_bytes(fixture_name))
}

/// The DER of every certificate in a PEM fixture.
pub fn fixture_certs_der(name: &str) -> Vec<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(&fixture_bytes(name))
        .map(|c| c.expect("cert").as_ref().to_vec())
        .collect()
}

/// The DER of the private key in a PEM fixture.
pub fn fixture_key_der(name: &str) -> Vec<u8> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(&fixture_bytes(name))
        .expect("key")
        .secret_der()
        .to_vec()
}
