//! Tests of writing refreshed `oidc` tokens back to a kubeconfig file.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_yaml_ng::Value;

use super::*;
use crate::{Auth, Config, Kubeconfig, KubeconfigOptions};

/// Two `oidc` users, a token user, several clusters and contexts, and keys
/// this crate does not model (which must survive a rewrite).
const KUBECONFIG: &str = r#"# a comment (lost on rewrite, as with client-go)
apiVersion: v1
kind: Config
preferences:
  colors: true
x-unknown-top-level: {keep: [1, 2, "three"]}
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    tls-server-name: prod.internal
    x-unknown-cluster-key: kept
- name: dev
  cluster:
    server: https://dev.example:6443
    insecure-skip-tls-verify: true
users:
- name: alice
  user:
    x-unknown-user-key: 42
    auth-provider:
      name: oidc
      config:
        client-id: kube
        client-secret: cs-SECRET
        extra-scopes: groups,email
        id-token: idt-SECRET-alice-old
        idp-issuer-url: https://issuer.example
        refresh-token: rt-SECRET-alice-old
- name: bob
  user:
    auth-provider:
      name: oidc
      config:
        client-id: kube
        id-token: idt-SECRET-bob
        idp-issuer-url: https://issuer.example
        refresh-token: rt-SECRET-bob
- name: carol
  user:
    token: tok-SECRET-carol
contexts:
- name: prod-alice
  context: {cluster: prod, user: alice, namespace: web}
- name: dev-bob
  context: {cluster: dev, user: bob}
- name: dev-carol
  context: {cluster: dev, user: carol}
current-context: prod-alice
extensions:
- name: ext
  extension: {a: b}
"#;

const NEW_ID: &str = "idt-SECRET-alice-new";
const NEW_RT: &str = "rt-SECRET-alice-new";

/// Writes `text` as `config` in a new directory.
fn kubeconfig_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The `oidc` provider of `user`, loaded from the file as a client would.
fn oidc_of(path: &Path, user: &str) -> OidcAuth {
    let kc = Kubeconfig::read_from(path).unwrap();
    let options = KubeconfigOptions {
        user: Some(user.into()),
        ..Default::default()
    };
    match Config::from_kubeconfig(&kc, &options).unwrap().auth {
        Auth::Oidc(oidc) => oidc,
        other => panic!("not oidc: {}", other.kind()),
    }
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// `doc` with the auth-provider config key `key` of `user` set to `value`.
fn with_key(mut doc: Value, user: usize, key: &str, value: &str) -> Value {
    doc["users"][user]["user"]["auth-provider"]["config"][key] = value.into();
    doc
}

fn secret(s: &str) -> SecretString {
    SecretString::new(s)
}

/// Captures what is logged (every level) while `f` runs.
fn logs_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (out, logs)
}

/// The names in `dir`, sorted (to see that no temporary file is left).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn only_the_users_two_tokens_change() {
    let (dir, path) = kubeconfig_file(KUBECONFIG);
    let oidc = oidc_of(&path, "alice");
    assert_eq!(oidc.persist_file(), Some(path.as_path()));

    let (outcome, logs) =
        logs_of(|| oidc.persist_refreshed(&secret(NEW_ID), Some(&secret(NEW_RT))));
    assert!(
        matches!(&outcome, OidcTokensPersisted::Written(p) if p == &path),
        "{outcome:?}"
    );
    assert!(!logs.contains("SECRET"), "{logs}");

    let written = std::fs::read_to_string(&path).unwrap();
    let expected = with_key(
        with_key(yaml(KUBECONFIG), 0, "id-token", NEW_ID),
        0,
        "refresh-token",
        NEW_RT,
    );
    assert_eq!(yaml(&written), expected, "{written}");
    assert!(!written.contains("# a comment"), "comments are not kept");
    // Key order is kept too (the serializer keeps the mapping's order).
    let order = |text: &str| {
        ["x-unknown-top-level", "clusters", "users", "contexts"]
            .map(|k| text.find(&format!("\n{k}:")).unwrap())
    };
    assert!(order(&written).is_sorted(), "{written}");
    assert_eq!(names_in(dir.path()), ["config"], "no temporary file left");

    // The file still loads, and gives the new tokens.
    let reread = oidc_of(&path, "alice");
    assert_eq!(reread.id_token().unwrap().expose(), NEW_ID);
    assert_eq!(reread.refresh_token().unwrap().expose(), NEW_RT);
    assert_eq!(
        oidc_of(&path, "bob").refresh_token().unwrap().expose(),
        "rt-SECRET-bob"
    );

    // A refresh without a rotated refresh token changes the id-token only.
    let before = yaml(&std::fs::read_to_string(&path).unwrap());
    let outcome = oidc.persist_refreshed(&secret("idt-SECRET-alice-3"), None);
    assert!(matches!(outcome, OidcTokensPersisted::Written(_)));
    let after = yaml(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(after, with_key(before, 0, "id-token", "idt-SECRET-alice-3"));
}

#[test]
fn a_user_without_a_config_map_gets_one() {
    let text = "clusters: [{name: c, cluster: {server: 'https://c'}}]\n\
                contexts: [{name: x, context: {cluster: c, user: u}}]\n\
                current-context: x\n\
                users:\n- name: u\n  user:\n    auth-provider: {name: oidc}\n";
    let (_dir, path) = kubeconfig_file(text);
    // Loading needs refresh settings; the file is then changed to have none.
    std::fs::write(
        &path,
        text.replace("{name: oidc}", "{name: oidc, config: {id-token: a}}"),
    )
    .unwrap();
    let oidc = oidc_of(&path, "u");
    std::fs::write(&path, text).unwrap();
    let outcome = oidc.persist_refreshed(&secret(NEW_ID), Some(&secret(NEW_RT)));
    assert!(matches!(outcome, OidcTokensPersisted::Written(_)));
    let expected = with_key(
        with_key(yaml(text), 0, "id-token", NEW_ID),
        0,
        "refresh-token",
        NEW_RT,
    );
    assert_eq!(yaml(&std::fs::read_to_string(&path).unwrap()), expected);
}

#[cfg(unix)]
#[test]
fn the_files_permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o600, 0o640, 0o644] {
        let (_dir, path) = kubeconfig_file(KUBECONFIG);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let oidc = oidc_of(&path, "bob");
        let outcome = oidc.persist_refreshed(&secret(NEW_ID), None);
        assert!(
            matches!(outcome, OidcTokensPersisted::Written(_)),
            "{mode:o}"
        );
        let now = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(now, mode, "{mode:o} became {now:o}");
        assert_eq!(oidc_of(&path, "bob").id_token().unwrap().expose(), NEW_ID);
    }
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_is_kept_and_its_target_replaced() {
    let (dir, target) = kubeconfig_file(KUBECONFIG);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let oidc = oidc_of(&link, "alice");
    let outcome = oidc.persist_refreshed(&secret(NEW_ID), None);
    assert!(matches!(outcome, OidcTokensPersisted::Written(p) if p == link));
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(
        oidc_of(&target, "alice").id_token().unwrap().expose(),
        NEW_ID
    );
}

#[test]
fn a_file_without_the_oidc_user_is_left_byte_for_byte() {
    let (_dir, path) = kubeconfig_file(KUBECONFIG);
    let oidc = oidc_of(&path, "alice");
    let cases = [
        // The user was removed.
        (
            KUBECONFIG.replace("- name: alice\n", "- name: alice2\n"),
            "gone",
        ),
        // The user is no longer oidc.
        (KUBECONFIG.replace("name: oidc\n      config:\n        client-id: kube\n        client-secret", "name: gcp\n      config:\n        client-id: kube\n        client-secret"), "not-oidc"),
        // The user has a token now.
        (
            KUBECONFIG.replace(
                "    x-unknown-user-key: 42\n    auth-provider:\n      name: oidc\n      config:\n        client-id: kube\n        client-secret: cs-SECRET\n        extra-scopes: groups,email\n        id-token: idt-SECRET-alice-old\n        idp-issuer-url: https://issuer.example\n        refresh-token: rt-SECRET-alice-old\n",
                "    token: tok-SECRET\n",
            ),
            "not-oidc",
        ),
        // The config is not a map.
        (
            KUBECONFIG.replace(
                "      config:\n        client-id: kube\n        client-secret",
                "      config: [1]\n      x:\n        client-id: kube\n        client-secret",
            ),
            "not-oidc",
        ),
        // No users at all, and an empty file.
        ("clusters: []\n".to_string(), "gone"),
        (String::new(), "gone"),
    ];
    for (text, expected) in cases {
        assert_ne!(text, KUBECONFIG);
        std::fs::write(&path, &text).unwrap();
        let (outcome, logs) =
            logs_of(|| oidc.persist_refreshed(&secret(NEW_ID), Some(&secret(NEW_RT))));
        let got = match outcome {
            OidcTokensPersisted::UserGone(_) => "gone",
            OidcTokensPersisted::NotOidc(_) => "not-oidc",
            other => panic!("{other:?} for {text}"),
        };
        assert_eq!(got, expected, "{text}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert!(
            logs.contains("DEBUG") && logs.contains("not written"),
            "{logs}"
        );
        assert!(!logs.contains("SECRET"), "{logs}");
    }

    // Not YAML any more: a warning, the file unchanged.
    let broken = "users: [ {name: alice\n";
    std::fs::write(&path, broken).unwrap();
    let (outcome, logs) = logs_of(|| oidc.persist_refreshed(&secret(NEW_ID), None));
    assert!(
        matches!(outcome, OidcTokensPersisted::Failed(Error::Yaml { .. })),
        "{outcome:?}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    assert!(logs.contains("WARN"), "{logs}");
}

#[test]
fn persisting_can_be_switched_off_and_needs_a_file() {
    let (_dir, path) = kubeconfig_file(KUBECONFIG);
    let oidc = oidc_of(&path, "alice");
    let off = oidc.with_token_persisting(false);
    assert_eq!(off.persist_file(), None);
    assert!(matches!(
        off.persist_refreshed(&secret(NEW_ID), None),
        OidcTokensPersisted::Off
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), KUBECONFIG);
    // It starts with the tokens of the original, then goes its own way.
    assert_eq!(off.refresh_token().unwrap().expose(), "rt-SECRET-alice-old");
    off.store_refreshed(secret(NEW_ID), Some(secret(NEW_RT)));
    assert_eq!(
        oidc.refresh_token().unwrap().expose(),
        "rt-SECRET-alice-old"
    );
    assert_eq!(
        off.with_token_persisting(true).persist_file(),
        Some(path.as_path())
    );

    // The same through Config.
    let kc = Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_kubeconfig(&kc, &KubeconfigOptions::default()).unwrap();
    let Auth::Oidc(on) = &config.auth else {
        panic!("not oidc")
    };
    assert_eq!(on.persist_file(), Some(path.as_path()));
    let config = config.with_oidc_token_persisting(false);
    let Auth::Oidc(off) = &config.auth else {
        panic!("not oidc")
    };
    assert!(matches!(
        off.persist_refreshed(&secret(NEW_ID), None),
        OidcTokensPersisted::Off
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), KUBECONFIG);

    // A kubeconfig from a string has no file.
    let kc = Kubeconfig::from_yaml(KUBECONFIG).unwrap();
    let config = Config::from_kubeconfig(&kc, &KubeconfigOptions::default()).unwrap();
    let Auth::Oidc(memory) = &config.auth else {
        panic!("not oidc")
    };
    assert_eq!(memory.persist_file(), None);
    assert!(matches!(
        memory.persist_refreshed(&secret(NEW_ID), None),
        OidcTokensPersisted::Off
    ));
}

/// Makes `dir` unwritable, also for a privileged user when it can
/// (`chattr +i`); `None` if it stays writable. Undone on drop.
#[cfg(unix)]
struct Unwritable<'a>(&'a Path, bool);

#[cfg(unix)]
impl<'a> Unwritable<'a> {
    fn new(dir: &'a Path) -> Option<Self> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        let writable = || {
            let probe = dir.join("probe");
            let ok = std::fs::write(&probe, "x").is_ok();
            let _ = std::fs::remove_file(&probe);
            ok
        };
        if !writable() {
            return Some(Self(dir, false));
        }
        // Root ignores the mode; an immutable directory stops it too.
        let immutable = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        let guard = Self(dir, immutable);
        (!writable()).then_some(guard)
    }
}

#[cfg(unix)]
impl Drop for Unwritable<'_> {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.0)
                .status();
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(0o700));
    }
}

#[cfg(unix)]
#[test]
fn an_unwritable_directory_is_a_logged_warning() {
    let (dir, path) = kubeconfig_file(KUBECONFIG);
    let oidc = oidc_of(&path, "alice");
    let Some(_unwritable) = Unwritable::new(dir.path()) else {
        // Neither the mode nor `chattr` can stop this user (nothing to test).
        eprintln!("skipped: the directory cannot be made unwritable here");
        return;
    };
    let (outcome, logs) =
        logs_of(|| oidc.persist_refreshed(&secret(NEW_ID), Some(&secret(NEW_RT))));
    let OidcTokensPersisted::Failed(error) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(matches!(error, Error::OidcPersist { .. }), "{error:?}");
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!(
            "cannot write the refreshed oidc tokens of user `alice` to {}: ",
            path.display()
        )),
        "{shown}"
    );
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains(&path.display().to_string()), "{logs}");
    assert!(logs.contains(&shown), "{logs}");
    assert!(
        !logs.contains("SECRET") && !shown.contains("SECRET"),
        "{logs}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), KUBECONFIG);
    assert_eq!(names_in(dir.path()), ["config"]);
    // The tokens are still used from memory (the caller stored them).
    oidc.store_refreshed(secret(NEW_ID), Some(secret(NEW_RT)));
    assert_eq!(oidc.id_token().unwrap().expose(), NEW_ID);
}

#[test]
fn a_deleted_file_is_a_logged_warning() {
    let (_dir, path) = kubeconfig_file(KUBECONFIG);
    let oidc = oidc_of(&path, "alice");
    std::fs::remove_file(&path).unwrap();
    let (outcome, logs) = logs_of(|| oidc.persist_refreshed(&secret(NEW_ID), None));
    assert!(
        matches!(outcome, OidcTokensPersisted::Failed(Error::ReadFile { .. })),
        "{outcome:?}"
    );
    assert!(
        logs.contains("WARN") && logs.contains(&path.display().to_string()),
        "{logs}"
    );
    assert!(!path.exists(), "not created again");
}

#[test]
fn concurrent_writers_never_leave_a_partial_file() {
    let (dir, path) = kubeconfig_file(KUBECONFIG);
    // Separate providers, as separate processes would have.
    let writers: Vec<OidcAuth> = (0..6).map(|_| oidc_of(&path, "alice")).collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let text = std::fs::read_to_string(&path).unwrap();
                let doc = yaml(&text);
                let id = doc["users"][0]["user"]["auth-provider"]["config"]["id-token"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert!(
                    id == "idt-SECRET-alice-old" || id.starts_with("idt-SECRET-w"),
                    "{id}"
                );
                assert_eq!(doc["users"][2]["name"], "carol", "{text}");
                reads += 1;
            }
            reads
        });
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, oidc)| {
                scope.spawn(move || {
                    for i in 0..20 {
                        let id = secret(&format!("idt-SECRET-w{w}-{i}"));
                        let outcome = oidc.persist_refreshed(&id, None);
                        assert!(
                            matches!(outcome, OidcTokensPersisted::Written(_)),
                            "{outcome:?}"
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        reader.join().unwrap()
    });
    assert!(reads > 0);
    assert_eq!(names_in(dir.path()), ["config"], "no temporary file left");
    let last = oidc_of(&path, "alice").id_token().unwrap();
    assert!(last.expose().ends_with("-19"), "a last write wins whole");
}
