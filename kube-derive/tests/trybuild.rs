//! Compile-time behaviour of `#[derive(CustomResource)]`: what compiles
//! (`ui/pass`, also run) and what is refused with an error pointing at the
//! offending attribute (`ui/fail`, against the `.stderr` snapshots;
//! regenerate with `TRYBUILD=overwrite` and read them before committing).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
