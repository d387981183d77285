//! Every kind of kubeconfig credential, from real files in temp dirs.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_fixture, fixture_b64, fixture_bytes, fixture_certs_der, fixture_key_der, write};
use kube_config::{Auth, Config, KeyFormat, KubeconfigLoader, KubeconfigOptions, TokenSource};

/// Writes a kubeconfig with one cluster, one context and the given user body
/// into `dir/config`, and resolves it.
fn resolve(dir: &Path, user: &str) -> (PathBuf, Result<Config, kube_config::Error>) {
    let yaml = format!(
        "clusters: [{{name: c, cluster: {{server: 'https://k.example'}}}}]\n\
         contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n\
         current-context: x\n\
         users:\n- name: u\n  user:\n{}",
        user.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let path = write(dir, "config", yaml);
    let result = KubeconfigLoader::new()
        .with_kubeconfig_env(path.as_os_str())
        .load()
        .and_then(|kc| Config::from_kubeconfig(&kc, &KubeconfigOptions::default()));
    (path, result)
}

fn ok(dir: &Path, user: &str) -> Config {
    match resolve(dir, user).1 {
        Ok(c) => c,
        Err(e) => panic!("{user}: {e}"),
    }
}

fn err(dir: &Path, user: &str) -> (PathBuf, String) {
    match resolve(dir, user) {
        (p, Err(e)) => (p, e.to_string()),
        (_, Ok(c)) => panic!("expected an error for {user}, got {c:?}"),
    }
}

fn bearer(c: &Config) -> String {
    let cred = c
        .auth
        .current_credential()
        .expect("credential")
        .expect("some");
    cred.token.expect("token").expose().to_owned()
}

#[test]
fn static_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ok(dir.path(), "token: tok-STATIC-123");
    assert_eq!(c.auth.kind(), "token");
    assert_eq!(bearer(&c), "tok-STATIC-123");
    let cred = c.auth.current_credential().expect("cred").expect("some");
    assert_eq!(
        cred.authorization_header().expect("header").expose(),
        "Bearer tok-STATIC-123"
    );
    assert!(!format!("{c:?}").contains("tok-STATIC-123"));
}

#[test]
fn token_file_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_path = write(dir.path(), "sa/token", "first-token\n");
    let c = ok(dir.path(), "tokenFile: sa/token");
    let Auth::Bearer(TokenSource::File(file)) = &c.auth else {
        panic!("not a token file: {:?}", c.auth);
    };
    assert_eq!(file.path(), token_path);
    assert_eq!(bearer(&c), "first-token");

    // Rewrite the file: the next call sees the new token.
    write(dir.path(), "sa/token", "second-token-is-longer");
    assert_eq!(bearer(&c), "second-token-is-longer");

    // Rotate the way kubelet does: write a new file and rename it over the old one.
    let tmp = write(dir.path(), "sa/.token.new", "third-token-via-rename");
    std::fs::rename(&tmp, &token_path).expect("rename");
    assert_eq!(bearer(&c), "third-token-via-rename");

    // A clone of the config shares the source.
    let clone = c.clone();
    write(dir.path(), "sa/token", "fourth");
    assert_eq!(bearer(&clone), "fourth");

    // Missing or empty at load time: errors naming the file and the user.
    let (p, msg) = err(dir.path(), "tokenFile: nope");
    assert_eq!(
        msg,
        format!(
            "cannot read tokenFile of user `u` in {} {}: No such file or directory (os error 2)",
            p.display(),
            dir.path().join("nope").display()
        )
    );
    write(dir.path(), "empty-token", "\n");
    let (_, msg) = err(dir.path(), "tokenFile: empty-token");
    assert_eq!(
        msg,
        format!(
            "token file {}: the file is empty",
            dir.path().join("empty-token").display()
        )
    );
}

#[test]
fn basic_auth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ok(dir.path(), "username: admin\npassword: pw-SECRET-456");
    let Auth::Basic { username, password } = &c.auth else {
        panic!("not basic: {:?}", c.auth);
    };
    assert_eq!(
        (username.as_str(), password.expose()),
        ("admin", "pw-SECRET-456")
    );
    let cred = c.auth.current_credential().expect("cred").expect("some");
    // base64("admin:pw-SECRET-456")
    assert_eq!(
        cred.authorization_header().expect("header").expose(),
        "Basic YWRtaW46cHctU0VDUkVULTQ1Ng=="
    );
    let dbg = format!("{c:?} {cred:?}");
    assert!(!dbg.contains("pw-SECRET-456"), "{dbg}");
}

#[test]
fn client_certificates_as_files_and_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (cert, key, format) in [
        ("client-rsa.crt", "client-rsa-pkcs1.key", KeyFormat::Pkcs1),
        ("client-rsa.crt", "client-rsa-pkcs8.key", KeyFormat::Pkcs8),
        ("client-ec.crt", "client-ec.key", KeyFormat::Sec1),
    ] {
        copy_fixture(cert, dir.path(), &format!("certs/{cert}"));
        copy_fixture(key, dir.path(), &format!("certs/{key}"));
        let as_files = ok(
            dir.path(),
            &format!("client-certificate: certs/{cert}\nclient-key: certs/{key}"),
        );
        let as_data = ok(
            dir.path(),
            &format!(
                "client-certificate-data: {}\nclient-key-data: {}",
                fixture_b64(cert),
                fixture_b64(key)
            ),
        );
        for c in [as_files, as_data] {
            let id = c.identity.as_ref().expect("identity");
            assert_eq!(id.key_format(), format);
            assert_eq!(id.cert_pem(), fixture_bytes(cert));
            let chain: Vec<Vec<u8>> = id.cert_chain_der().iter().map(|c| c.to_vec()).collect();
            assert_eq!(chain, fixture_certs_der(cert));
            assert_eq!(id.key_der().secret_der(), fixture_key_der(key));
            assert_eq!(c.auth.kind(), "none");
            let dbg = format!("{c:?}");
            assert!(
                !dbg.contains("PRIVATE KEY") && !dbg.contains(&fixture_b64(key)[..40]),
                "{dbg}"
            );
        }
    }
}

#[test]
fn client_certificate_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, msg) = err(
        dir.path(),
        "client-certificate: missing.crt\nclient-key: missing.key",
    );
    assert_eq!(
        msg,
        format!(
            "cannot read client-certificate of user `u` in {} {}: No such file or directory (os error 2)",
            p.display(),
            dir.path().join("missing.crt").display()
        )
    );

    copy_fixture("client-ec.crt", dir.path(), "c.crt");
    write(
        dir.path(),
        "bad.key",
        "-----BEGIN CERTIFICATE-----\nnot a key\n",
    );
    let (p, msg) = err(dir.path(), "client-certificate: c.crt\nclient-key: bad.key");
    assert_eq!(
        msg,
        format!(
            "invalid client key in file {} (client-key of user `u` in {}): missing `-----END CERTIFICATE-----` line",
            dir.path().join("bad.key").display(),
            p.display()
        )
    );

    let (p, msg) = err(
        dir.path(),
        &format!(
            "client-certificate: c.crt\nclient-key-data: {}",
            fixture_b64("ca.crt")
        ),
    );
    assert_eq!(
        msg,
        format!(
            "invalid client key in client-key-data of user `u` in {}: no RSA PRIVATE KEY, PRIVATE KEY or EC PRIVATE KEY block found",
            p.display()
        )
    );

    let (p, msg) = err(
        dir.path(),
        &format!(
            "client-certificate-data: {}\nclient-key: c.crt",
            fixture_b64("client-ec.key")
        ),
    );
    assert_eq!(
        msg,
        format!(
            "invalid client certificate in client-certificate-data of user `u` in {}: no CERTIFICATE block found",
            p.display()
        )
    );
}

#[test]
fn impersonation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ok(
        dir.path(),
        "token: t\nas: jane\nas-uid: '42'\nas-groups: [devs, ops]\nas-user-extra: {reason: [debugging], scopes: [a, b]}",
    );
    let imp = c.impersonate.expect("impersonation");
    assert_eq!(imp.user, "jane");
    assert_eq!(imp.uid.as_deref(), Some("42"));
    assert_eq!(imp.groups, ["devs", "ops"]);
    assert_eq!(
        imp.extra.get("scopes").map(Vec::as_slice),
        Some(&["a".to_owned(), "b".to_owned()][..])
    );
    assert_eq!(imp.extra.len(), 2);

    let (p, msg) = err(dir.path(), "as-groups: [devs]");
    assert_eq!(
        msg,
        format!(
            "user `u` in {}: as-uid, as-groups or as-user-extra is set without as",
            p.display()
        )
    );
}

#[test]
fn oidc_and_unsupported_providers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ok(
        dir.path(),
        "auth-provider:\n  name: oidc\n  config:\n    id-token: idtok-SECRET\n    refresh-token: rtok-SECRET\n    client-id: kube\n    client-secret: csec-SECRET\n    idp-issuer-url: https://issuer.example",
    );
    let Auth::Oidc(oidc) = &c.auth else {
        panic!("not oidc: {:?}", c.auth);
    };
    let provider = oidc.provider();
    assert_eq!(oidc.id_token().unwrap().expose(), "idtok-SECRET");
    assert_eq!(
        provider.issuer_url.as_deref(),
        Some("https://issuer.example")
    );
    assert_eq!(provider.client_id.as_deref(), Some("kube"));
    assert_eq!(
        provider.refresh_token.as_ref().map(|t| t.expose()),
        Some("rtok-SECRET")
    );
    // Not a JWT: its expiry cannot be read, a typed error that does not
    // quote it.
    let e = c.auth.current_credential().unwrap_err();
    assert!(matches!(e, kube_config::Error::OidcIdToken { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("SECRET"), "{e}");
    let dbg = format!("{c:?}");
    for s in ["idtok-SECRET", "rtok-SECRET", "csec-SECRET"] {
        assert!(!dbg.contains(s), "{s} in {dbg}");
    }

    for provider in ["gcp", "azure"] {
        let (p, msg) = err(
            dir.path(),
            &format!("auth-provider: {{name: {provider}, config: {{access-token: x}}}}"),
        );
        assert_eq!(
            msg,
            format!(
                "user `u` in {} uses auth-provider `{provider}`, which is not supported; use an exec plugin",
                p.display()
            )
        );
    }
}

#[test]
fn debug_of_kubeconfig_and_config_hides_every_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_b64 = fixture_b64("client-ec.key");
    let user = format!(
        "token: tok-HIDDEN-1\nclient-certificate-data: {}\nclient-key-data: {key_b64}",
        fixture_b64("client-ec.crt")
    );
    let (path, result) = resolve(dir.path(), &user);
    let config = result.expect("config");
    let kc = kube_config::Kubeconfig::read_from(&path).expect("read");
    let shown = format!("{kc:?} {kc:#?} {config:?} {config:#?}");
    assert!(!shown.contains("tok-HIDDEN-1"), "{shown}");
    assert!(!shown.contains(&key_b64[..30]), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("[redacted]"));
}
