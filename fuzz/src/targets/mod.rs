//! The fuzz targets: one per parser of untrusted bytes.
//!
//! A target is a `check` function over raw bytes that panics when a
//! property fails (or when the code under test panics), a proptest strategy
//! generating Kubernetes-shaped inputs, and a dictionary of tokens for the
//! mutation engine. Checks are deterministic functions of their input, so
//! a saved input reproduces its failure.

use proptest::strategy::BoxedStrategy;

pub mod exec;
pub mod kubeconfig;
pub mod segment;
pub mod status;
pub mod watch;
pub mod watch_protobuf;

/// One fuzz target.
pub struct Target {
    /// The name (`--target NAME`, the corpus directory).
    pub name: &'static str,
    /// What it exercises, one line.
    pub about: &'static str,
    /// Runs one input; panics when a property fails.
    pub check: fn(&[u8]),
    /// Generates Kubernetes-shaped inputs.
    pub strategy: fn() -> BoxedStrategy<Vec<u8>>,
    /// Tokens the mutation engine inserts.
    pub dictionary: &'static [&'static [u8]],
}

/// Every target, in the order a run visits them.
pub fn all() -> Vec<Target> {
    vec![
        kubeconfig::target(),
        watch::target(),
        watch_protobuf::target(),
        status::target(),
        exec::target(),
        segment::target(),
    ]
}

/// Finds a target by name.
pub fn by_name(name: &str) -> Option<Target> {
    all().into_iter().find(|t| t.name == name)
}

/// The secret values that must never be shown: strings carrying the
/// `SECRET` marker the generators put in every token, password and key
/// (mutations keep it often), long enough not to match by chance.
pub(crate) fn marked_secrets<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .filter(|v| v.len() >= 12 && v.contains("SECRET"))
        .map(str::to_owned)
        .collect()
}

/// Panics if `text` (an error message or Debug output) shows a secret.
pub(crate) fn assert_hidden(secrets: &[String], text: &str, what: &str) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what} shows the secret value {s:?}: {text}"
        );
    }
}
