//! Fuzz and property targets for every parser of untrusted bytes in kube:
//! kubeconfig documents, watch streams, HTTP error bodies, exec plugin
//! output and URL path segments (see [`targets`]).
//!
//! Each target is a deterministic `check(&[u8])` that panics when a
//! property fails. Inputs come from three sources: a committed seed corpus
//! (`fuzz/corpus/<target>/`), proptest strategies that generate
//! Kubernetes-shaped documents, and a byte-mutation engine
//! ([`mutate`]) over both. The [`runner`] gives each target a time budget,
//! runs every case under `catch_unwind`, and saves any panicking input so
//! that it can be replayed. All on stable Rust: no libFuzzer, no nightly.
//!
//! Run it with `cargo xtask fuzz --seconds N [--target T]`; the property
//! tests in `tests/` run a few hundred generated cases per target as part
//! of `cargo test`.

pub mod mutate;
pub mod runner;
pub mod targets;
