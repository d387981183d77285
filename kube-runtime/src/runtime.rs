//! The one requirement of every constructor that starts a background watch:
//! a tokio runtime to spawn it on. Without one, tokio's own panic ("there is
//! no reactor running…") does not say which call needed it or what to do,
//! so these constructors check first and say both.

/// The current runtime's handle, or a panic naming `what` and the fix.
pub(crate) fn require_runtime(what: &str) -> tokio::runtime::Handle {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle,
        Err(_) => panic!("{}", no_runtime_message(what)),
    }
}

/// The panic message of [`require_runtime`].
pub(crate) fn no_runtime_message(what: &str) -> String {
    format!(
        "{what} was called outside a tokio runtime, but it spawns the task that lists and \
         watches: call it from async code run by tokio (#[tokio::main], #[tokio::test], \
         Runtime::block_on), or enter a runtime first with `let _guard = runtime.enter();`"
    )
}
