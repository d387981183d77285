//! Loading, merging and selecting real kubeconfig files in temp dirs.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_fixture, fixture_certs_der, write};
use kube_config::{Config, Kubeconfig, KubeconfigLoader, KubeconfigOptions};

struct ThreeFiles {
    _dir: tempfile::TempDir,
    root: PathBuf,
    f1: PathBuf,
    f2: PathBuf,
    f3: PathBuf,
    empty: PathBuf,
    env: String,
}

/// Three kubeconfigs with overlapping names plus an empty file; the
/// KUBECONFIG value also has empty, missing and repeated entries.
fn three_files() -> ThreeFiles {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    copy_fixture("ca.crt", &root, "one/certs/ca.crt");
    copy_fixture("client-rsa.crt", &root, "pki/alice.crt");
    copy_fixture("client-rsa-pkcs1.key", &root, "pki/alice.key");
    copy_fixture("ca-bundle.crt", &root, "two/ca.crt");
    write(&root, "two/tokens/bob", "bob-token\n");
    let f1 = write(
        &root,
        "one/config",
        r#"
apiVersion: v1
kind: Config
clusters:
- name: shared
  cluster: {server: "https://one.example:6443", certificate-authority: certs/ca.crt}
- name: only-one
  cluster: {server: "https://only-one.example"}
users:
- name: alice
  user: {client-certificate: ../pki/alice.crt, client-key: ../pki/alice.key}
contexts:
- name: shared-ctx
  context: {cluster: shared, user: alice, namespace: from-one}
current-context: ""
"#,
    );
    let f2 = write(
        &root,
        "two/config",
        r#"
clusters:
- name: shared
  cluster: {server: "https://two.example"}
- name: only-two
  cluster: {server: "https://two-only.example", certificate-authority: ca.crt}
users:
- name: alice
  user: {token: from-two}
- name: bob
  user: {tokenFile: tokens/bob}
contexts:
- name: shared-ctx
  context: {cluster: only-two, user: bob}
- name: two-ctx
  context: {cluster: only-two, user: bob, namespace: ns-two}
current-context: two-ctx
"#,
    );
    let empty = write(&root, "empty/config", "");
    let f3 = write(
        &root,
        "three/config",
        r#"
clusters: [{name: three, cluster: {server: "http://three.example:8080"}}]
users: [{name: carol, user: {username: carol, password: pw}}]
contexts:
- {name: three-ctx, context: {cluster: three, user: carol}}
- {name: shared-ctx, context: {cluster: three}}
- {name: ghost, context: {cluster: three, user: nobody}}
current-context: three-ctx
"#,
    );
    let missing = root.join("missing/config");
    let env = [
        "",
        f1.to_str().expect("utf8"),
        missing.to_str().expect("utf8"),
        "",
        f2.to_str().expect("utf8"),
        f1.to_str().expect("utf8"),
        empty.to_str().expect("utf8"),
        f3.to_str().expect("utf8"),
    ]
    .join(":");
    ThreeFiles {
        _dir: dir,
        root,
        f1,
        f2,
        f3,
        empty,
        env,
    }
}

fn ctx(name: &str) -> KubeconfigOptions {
    KubeconfigOptions {
        context: Some(name.into()),
        ..Default::default()
    }
}

#[test]
fn merge_order_over_three_files() {
    let t = three_files();
    let kc = KubeconfigLoader::new()
        .with_kubeconfig_env(&t.env)
        .with_home(t.root.join("home"))
        .load()
        .expect("load");
    assert_eq!(
        kc.sources,
        [t.f1.clone(), t.f2.clone(), t.empty.clone(), t.f3.clone()]
    );
    // first file that defines a name wins, whole entry
    let shared = kc.cluster("shared").expect("shared");
    assert_eq!(
        shared.cluster.server.as_deref(),
        Some("https://one.example:6443")
    );
    assert_eq!(shared.source.as_deref(), Some(t.f1.as_path()));
    let alice = kc.user("alice").expect("alice");
    assert!(alice.user.token.is_none());
    assert_eq!(
        kc.context("shared-ctx").expect("ctx").context.cluster,
        "shared"
    );
    // names only later files define are added
    assert!(kc.cluster("only-two").is_some() && kc.cluster("three").is_some());
    assert_eq!(kc.clusters.len(), 4);
    assert_eq!(kc.contexts.len(), 4);
    assert_eq!(kc.users.len(), 3);
    // first non-empty current-context wins
    assert_eq!(kc.current_context.as_deref(), Some("two-ctx"));
}

#[test]
fn relative_paths_resolve_against_each_files_dir() {
    let t = three_files();
    let kc = KubeconfigLoader::new()
        .with_kubeconfig_env(&t.env)
        .load()
        .expect("load");
    let one = t.f1.parent().expect("dir");
    let two = t.f2.parent().expect("dir");
    assert_eq!(
        kc.cluster("shared")
            .and_then(|c| c.cluster.certificate_authority.clone()),
        Some(one.join("certs/ca.crt").display().to_string())
    );
    assert_eq!(
        kc.user("alice").and_then(|u| u.user.client_key.clone()),
        Some(one.join("../pki/alice.key").display().to_string())
    );
    assert_eq!(
        kc.user("bob").and_then(|u| u.user.token_file.clone()),
        Some(two.join("tokens/bob").display().to_string())
    );

    // default context: two-ctx (current-context of file two)
    let c = Config::from_kubeconfig(&kc, &KubeconfigOptions::default()).expect("two-ctx");
    assert_eq!(c.cluster_url.as_str(), "https://two-only.example/");
    assert_eq!(c.default_namespace, "ns-two");
    assert_eq!(c.root_certs, Some(fixture_certs_der("ca-bundle.crt")));
    let cred = c.auth.current_credential().expect("cred").expect("some");
    assert_eq!(cred.token.expect("token").expose(), "bob-token");

    // shared-ctx comes from file one: its CA and client cert from one's dir
    let c = Config::from_kubeconfig(&kc, &ctx("shared-ctx")).expect("shared-ctx");
    assert_eq!(c.cluster_url.as_str(), "https://one.example:6443/");
    assert_eq!(c.default_namespace, "from-one");
    assert_eq!(c.root_certs, Some(fixture_certs_der("ca.crt")));
    assert!(c.identity.is_some());
    assert_eq!(c.auth.kind(), "none");

    // three-ctx, plus namespace override
    let c = Config::from_kubeconfig(
        &kc,
        &KubeconfigOptions {
            context: Some("three-ctx".into()),
            namespace: Some("override".into()),
            ..Default::default()
        },
    )
    .expect("three-ctx");
    assert_eq!(c.cluster_url.as_str(), "http://three.example:8080/");
    assert_eq!(c.default_namespace, "override");
    assert_eq!(c.auth.kind(), "basic");
    assert!(c.root_certs.is_none());
}

#[test]
fn errors_in_merged_configs_name_the_files() {
    let t = three_files();
    let kc = KubeconfigLoader::new()
        .with_kubeconfig_env(&t.env)
        .load()
        .expect("load");
    let files = format!(
        "any of {}, {}, {}, {}",
        t.f1.display(),
        t.f2.display(),
        t.empty.display(),
        t.f3.display()
    );
    let e = |o: KubeconfigOptions| Config::from_kubeconfig(&kc, &o).unwrap_err().to_string();
    assert_eq!(
        e(ctx("nope")),
        format!("context `nope` is not defined in {files}")
    );
    assert_eq!(
        e(ctx("ghost")),
        format!("context `ghost` names user `nobody`, which is not defined in {files}")
    );
    assert_eq!(
        e(KubeconfigOptions {
            user: Some("zed".into()),
            ..Default::default()
        }),
        format!("user `zed` is not defined in {files}")
    );
}

#[test]
fn default_location_is_home_kube_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    write(
        &home,
        ".kube/config",
        "clusters: [{name: c, cluster: {server: 'https://home.example'}}]\ncontexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
    );
    let loader = KubeconfigLoader::new().with_home(&home);
    let c = Config::from_kubeconfig(&loader.load().expect("load"), &KubeconfigOptions::default())
        .expect("config");
    assert_eq!(c.cluster_url.as_str(), "https://home.example/");
    assert_eq!(c.auth.kind(), "none");

    // An empty KUBECONFIG counts as unset.
    let loader = KubeconfigLoader::new()
        .with_kubeconfig_env("")
        .with_home(&home);
    assert!(loader.load().is_ok());

    // KUBECONFIG set but every entry missing: kubectl does not fall back to ~/.kube/config.
    let missing = dir.path().join("missing");
    let loader = KubeconfigLoader::new()
        .with_kubeconfig_env(missing.as_os_str())
        .with_home(&home);
    assert_eq!(
        loader.load().unwrap_err().to_string(),
        format!(
            "no Kubernetes configuration found; tried: KUBECONFIG entry {}: not found",
            missing.display()
        )
    );
}

fn load_one(dir: &Path, yaml: &str) -> (PathBuf, Result<Config, kube_config::Error>) {
    let path = write(dir, "config", yaml);
    let result = KubeconfigLoader::new()
        .with_kubeconfig_env(path.as_os_str())
        .load()
        .and_then(|kc| Config::from_kubeconfig(&kc, &KubeconfigOptions::default()));
    (path, result)
}

fn load_err(yaml: &str) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, result) = load_one(dir.path(), yaml);
    let msg = match result {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    };
    (dir, path, msg)
}

#[test]
fn malformed_inputs_have_precise_messages() {
    let (_d, p, msg) = load_err("clusters:\n- name: a\n  cluster: {server: [\n");
    assert!(
        msg.starts_with(&format!("{}: invalid kubeconfig: ", p.display()))
            && msg.contains("line 3"),
        "{msg}"
    );

    let (_d, p, msg) = load_err(
        "clusters: [{name: a, cluster: {server: 'https://a'}}]\nusers:\n- {name: u}\n- {name: u}\n",
    );
    assert_eq!(msg, format!("{}: duplicate user name `u`", p.display()));

    let (_d, p, msg) = load_err(
        "clusters: [{name: prod, cluster: {server: 'https://a'}}]\ncontexts: [{name: prod, context: {cluster: prod, user: alice}}]\ncurrent-context: prod\n",
    );
    assert_eq!(
        msg,
        format!(
            "context `prod` names user `alice`, which is not defined in {}",
            p.display()
        )
    );

    let (_d, p, msg) =
        load_err("contexts: [{name: prod, context: {cluster: prod}}]\ncurrent-context: prod\n");
    assert_eq!(
        msg,
        format!(
            "context `prod` names cluster `prod`, which is not defined in {}",
            p.display()
        )
    );

    let (_d, p, msg) = load_err("clusters: [{name: a, cluster: {}}]\ncurrent-context: x\n");
    assert_eq!(
        msg,
        format!("context `x` is not defined in {}", p.display())
    );

    let (_d, p, msg) = load_err("clusters: [{name: a, cluster: {}}]\n");
    assert_eq!(
        msg,
        format!(
            "no context selected: {} sets no current-context and no context was given",
            p.display()
        )
    );

    let base = "contexts: [{name: x, context: {cluster: a, user: u}}]\ncurrent-context: x\nusers: [{name: u, user: {}}]\n";
    let (_d, p, msg) = load_err(&format!("{base}clusters: [{{name: a, cluster: {{}}}}]\n"));
    assert_eq!(msg, format!("cluster `a` in {} has no server", p.display()));

    for (server, reason) in [
        ("localhost:8080", "no scheme; expected https://host[:port]"),
        ("ftp://files.example", "scheme `ftp` is not http or https"),
        ("https://", "empty host"),
        ("https://[::1", "invalid IPv6 address"),
    ] {
        let (_d, p, msg) = load_err(&format!(
            "{base}clusters: [{{name: a, cluster: {{server: '{server}'}}}}]\n"
        ));
        assert_eq!(
            msg,
            format!(
                "cluster `a` in {}: invalid server URL `{server}`: {reason}",
                p.display()
            )
        );
    }

    let (_d, p, msg) = load_err(&format!(
        "{base}clusters: [{{name: a, cluster: {{server: 'https://a', proxy-url: 'ftp://p'}}}}]\n"
    ));
    assert_eq!(
        msg,
        format!(
            "cluster `a` in {}: invalid proxy-url `ftp://p`: scheme `ftp` is not http, https or socks5",
            p.display()
        )
    );

    let (_d, p, msg) = load_err(&format!(
        "{base}clusters: [{{name: a, cluster: {{server: 'https://a', certificate-authority: ca.crt}}}}]\n"
    ));
    let ca = p.parent().expect("dir").join("ca.crt");
    assert_eq!(
        msg,
        format!(
            "cannot read certificate-authority of cluster `a` in {} {}: No such file or directory (os error 2)",
            p.display(),
            ca.display()
        )
    );

    let (_d, p, msg) = load_err(&format!(
        "{base}clusters: [{{name: a, cluster: {{server: 'https://a', certificate-authority-data: 'bm90IHBlbQ=='}}}}]\n"
    ));
    assert_eq!(
        msg,
        format!(
            "invalid certificate authority in certificate-authority-data of cluster `a` in {}: no CERTIFICATE block found",
            p.display()
        )
    );

    let (_d, p, msg) = load_err(&format!(
        "{base}clusters: [{{name: a, cluster: {{server: 'https://a', certificate-authority-data: 'not base64!'}}}}]\n"
    ));
    assert_eq!(
        msg,
        format!(
            "certificate-authority-data of cluster `a` in {} is not valid base64: Invalid symbol 33, offset 9.",
            p.display()
        )
    );

    let (_d, p, msg) = load_err(&format!(
        "{base}clusters: [{{name: a, cluster: {{server: 'https://a', certificate-authority: x, certificate-authority-data: eA==}}}}]\n"
    ));
    assert_eq!(
        msg,
        format!(
            "invalid certificate authority in cluster `a` in {}: both certificate-authority and certificate-authority-data are set",
            p.display()
        )
    );
}

#[test]
fn file_round_trip_keeps_preferences_and_extensions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "config",
        r#"
apiVersion: v1
kind: Config
preferences: {colors: true}
clusters:
- name: a
  cluster:
    server: https://a
    extensions: [{name: ext.example.com/x, extension: {k: v}}]
contexts:
- name: a
  context: {cluster: a, extensions: [{name: c, extension: [1, 2]}]}
current-context: a
extensions: [{name: top, extension: {deep: {list: [true]}}}]
"#,
    );
    let kc = Kubeconfig::read_from(&path).expect("read");
    let out = write(dir.path(), "out", kc.to_yaml().expect("yaml"));
    let again = Kubeconfig::read_from(&out).expect("reread");
    assert_eq!(again.preferences, kc.preferences);
    assert_eq!(again.extensions, kc.extensions);
    assert_eq!(again.clusters[0].cluster, kc.clusters[0].cluster);
    assert_eq!(again.contexts[0].context, kc.contexts[0].context);
    assert_eq!(
        again.extensions.as_ref().map(|e| e[0].extension.clone()),
        Some(serde_json::json!({"deep": {"list": [true]}}))
    );

    let err = Kubeconfig::read_from(dir.path().join("nope")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read kubeconfig {}: No such file or directory (os error 2)",
            dir.path().join("nope").display()
        )
    );
}

#[test]
fn a_broken_file_in_kubeconfig_is_an_error_not_skipped() {
    let t = three_files();
    let bad = write(&t.root, "bad/config", "clusters: 7\n");
    let env = format!("{}:{}", t.f1.display(), bad.display());
    let err = KubeconfigLoader::new()
        .with_kubeconfig_env(env)
        .load()
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: invalid kubeconfig: clusters: invalid type",
            bad.display()
        )),
        "{err}"
    );
}
