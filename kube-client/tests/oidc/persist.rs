//! Refreshed `oidc` tokens written back to the kubeconfig file, against the
//! real API server and the test issuer of the parent module: after one
//! refresh the file holds the new ID token and the rotated refresh token,
//! so a client loaded from it afterwards needs no refresh; with persisting
//! switched off the file is left as it was.

use std::path::{Path, PathBuf};

use kube_client::Client;
use kube_client::config::{Config, Kubeconfig};

use super::{env, kubeconfig, now_secs, oidc_of, whoami};

/// A kubeconfig file (mode 0600) whose user has an expired ID token of
/// `sub` and a refresh token of the issuer, with a key of its own that
/// must survive the rewrite. Returns the directory, the file, the refresh
/// token and the expired token.
fn expired_kubeconfig_file(sub: &str) -> (tempfile::TempDir, PathBuf, String, String) {
    let issuer = &env().issuer;
    let expired = issuer.key.id_token(&issuer.url, sub, now_secs() - 3600);
    let refresh = issuer.new_refresh_token(sub);
    let mut doc = kubeconfig(&[
        ("id-token", expired.clone()),
        ("refresh-token", refresh.clone()),
    ]);
    doc["preferences"] = serde_json::json!({"kept": "yes"});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (dir, path, refresh, expired)
}

fn load(path: &Path) -> Config {
    let kc = Kubeconfig::read_from(path).unwrap();
    Config::from_kubeconfig(&kc, &Default::default()).unwrap()
}

/// The `auth-provider.config` value `key` of the file's user.
fn provider_setting(path: &Path, key: &str) -> Option<String> {
    let doc: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["users"][0]["user"]["auth-provider"]["config"][key]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn refreshed_tokens_are_written_back_and_the_next_client_needs_no_refresh() {
    let issuer = &env().issuer;
    let (_dir, path, refresh, expired) = expired_kubeconfig_file("frank");
    let before: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let config = load(&path);
    let oidc = oidc_of(&config);
    assert_eq!(oidc.persist_file(), Some(path.as_path()));
    let client = Client::try_from(config).unwrap();
    assert_eq!(whoami(&client).await.unwrap(), "oidc:frank");
    assert_eq!(issuer.refreshes("frank"), 1);

    // The file holds what the refresh answered: the new ID token and the
    // rotated refresh token (the old one is used up at the issuer).
    let id_token = provider_setting(&path, "id-token").unwrap();
    let rotated = provider_setting(&path, "refresh-token").unwrap();
    assert_ne!(id_token, expired);
    assert_eq!(id_token, oidc.id_token().unwrap().expose());
    assert_ne!(rotated, refresh);
    assert_eq!(rotated, oidc.refresh_token().unwrap().expose());
    assert!(issuer.knows(&rotated) && !issuer.knows(&refresh));
    // Nothing else changed.
    let mut expected = before;
    let settings = &mut expected["users"][0]["user"]["auth-provider"]["config"];
    settings["id-token"] = id_token.clone().into();
    settings["refresh-token"] = rotated.clone().into();
    let after: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(after, expected);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }

    // A new process (here: a new Client from the file read again) uses
    // the written ID token as is.
    let again = Client::try_from(load(&path)).unwrap();
    assert_eq!(whoami(&again).await.unwrap(), "oidc:frank");
    assert_eq!(issuer.refreshes("frank"), 1, "no second refresh");
    assert_eq!(provider_setting(&path, "id-token").unwrap(), id_token);
}

#[tokio::test]
async fn with_persisting_off_the_file_is_unchanged() {
    let issuer = &env().issuer;
    let (_dir, path, refresh, _) = expired_kubeconfig_file("grace");
    let text = std::fs::read(&path).unwrap();
    let config = load(&path).with_oidc_token_persisting(false);
    assert_eq!(oidc_of(&config).persist_file(), None);
    let client = Client::try_from(config).unwrap();
    assert_eq!(whoami(&client).await.unwrap(), "oidc:grace");
    assert_eq!(issuer.refreshes("grace"), 1);
    assert!(!issuer.knows(&refresh), "the refresh token was used");
    assert_eq!(std::fs::read(&path).unwrap(), text, "byte for byte");
}

#[tokio::test]
async fn a_file_that_cannot_be_written_does_not_fail_the_request() {
    let issuer = &env().issuer;
    let (_dir, path, _, _) = expired_kubeconfig_file("heidi");
    let config = load(&path);
    // The file is replaced by a directory: it can be neither read nor
    // replaced, whoever runs the test.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let client = Client::try_from(config).unwrap();
    assert_eq!(whoami(&client).await.unwrap(), "oidc:heidi");
    assert_eq!(whoami(&client).await.unwrap(), "oidc:heidi");
    assert_eq!(
        issuer.refreshes("heidi"),
        1,
        "the token is used from memory"
    );
    assert!(path.is_dir());
}
