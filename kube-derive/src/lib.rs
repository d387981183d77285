//! `kube-derive`: `#[derive(CustomResource)]`.
//!
//! This proc-macro crate will generate, from a `FooSpec` struct, the `Foo`
//! wrapper (metadata, spec, status), its `Resource` impl and its
//! CustomResourceDefinition. It is being built in the kube-derive issue and
//! exports no macro yet.
