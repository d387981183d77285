//! No input panics: every prefix and many mutations of a rich kubeconfig go
//! through parse, select and resolve, returning `Ok` or an `Err`.

use kube_config::{Config, Kubeconfig, KubeconfigOptions};

const RICH: &str = r#"apiVersion: v1
kind: Config
preferences: {colors: true}
clusters:
- name: a
  cluster:
    server: https://[fd00::1]:6443/prefix
    certificate-authority-data: bm90IGEgY2VydA==
    tls-server-name: api
    proxy-url: socks5://p:1
    extensions: [{name: client.authentication.k8s.io/exec, extension: {x: 1}}]
- name: b
  cluster: {server: "http://b", insecure-skip-tls-verify: true, disable-compression: true}
users:
- name: u
  user:
    token: t
    as: x
    as-groups: [g]
    as-user-extra: {k: [v]}
- name: e
  user:
    exec: {command: ./x, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never, env: [{name: A, value: B}], args: [a]}
- name: o
  user: {auth-provider: {name: oidc, config: {id-token: i}}}
- name: c
  user: {client-certificate-data: eA==, client-key-data: eQ==}
contexts:
- {name: a, context: {cluster: a, user: u, namespace: n}}
- {name: b, context: {cluster: b, user: e}}
- {name: c, context: {cluster: b, user: o}}
- {name: d, context: {cluster: a, user: c}}
current-context: a
"#;

fn exercise(text: &str) {
    let Ok(kc) = Kubeconfig::from_yaml(text) else {
        return;
    };
    let _ = kc.to_yaml();
    for context in [None, Some("a"), Some("b"), Some("c"), Some("d"), Some("zz")] {
        let options = KubeconfigOptions {
            context: context.map(Into::into),
            ..Default::default()
        };
        if let Ok(config) = Config::from_kubeconfig(&kc, &options) {
            // Exec plugins are not run here (their command does not exist anyway).
            if config.auth.kind() != "exec" {
                let _ = config.auth.current_credential();
            }
            let _ = format!("{config:?}");
        }
    }
}

#[test]
fn every_prefix_is_handled() {
    let mut cut = 0;
    while cut < RICH.len() {
        if RICH.is_char_boundary(cut) {
            exercise(&RICH[..cut]);
        }
        cut += 7;
    }
    exercise(RICH);
}

#[test]
fn mutations_are_handled() {
    let replacements = [
        "",
        "null",
        "[]",
        "{}",
        "-1",
        "\"\"",
        "~",
        "::",
        "\u{0}",
        "é",
        "[[[[",
        "&a",
        "*a",
        "!!binary x",
        "https://",
        "99999999999999999999",
    ];
    let words: Vec<(usize, usize)> = RICH
        .char_indices()
        .filter(|(_, c)| c.is_alphanumeric())
        .map(|(i, _)| i)
        .collect::<Vec<_>>()
        .chunks(9)
        .map(|c| (c[0], c[c.len() - 1] + 1))
        .collect();
    for (n, (start, end)) in words.iter().enumerate() {
        if !RICH.is_char_boundary(*start) || !RICH.is_char_boundary(*end) {
            continue;
        }
        let r = replacements[n % replacements.len()];
        exercise(&format!("{}{}{}", &RICH[..*start], r, &RICH[*end..]));
    }
}
