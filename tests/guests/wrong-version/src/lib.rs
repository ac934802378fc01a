//! Test guest built against `trading:strategy@0.9.0`: the host must refuse it by version.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

struct Future;

impl exports::trading::strategy::strategy::Guest for Future {
    fn init(params: String) -> Result<String, String> {
        Ok(params)
    }
}

#[cfg(target_arch = "wasm32")]
export!(Future);
