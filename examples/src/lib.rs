//! The kube examples live in `examples/` as `[[example]]` targets; run one
//! with `cargo run --example NAME`. This library is intentionally empty.
