//! Core module to component. The host calls it on a strategy file that is a core module;
//! strategies/build.sh calls the `componentize` binary on every Rust strategy it builds.

/// Turns a core module with embedded WIT metadata into a component. The encoder is fed
/// untrusted bytes and has been seen to panic on a truncated module, so a panic is caught
/// and reported like any other refusal.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, String> {
    let encode = || {
        wit_component::ComponentEncoder::default()
            .module(core)
            .and_then(|e| e.validate(true).encode())
            .map_err(|e| format!("{e:#}"))
    };
    std::panic::catch_unwind(encode).unwrap_or_else(|panic| {
        let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
        Err(format!("the module is malformed (the componentizer gave up: {})", what.lines().next().unwrap_or_default()))
    })
}
