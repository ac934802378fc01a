//! `componentize IN OUT`: turns a core module built with the strategy SDK (the contract
//! embedded by wit-bindgen) into a component, so shipped strategies are real components.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: componentize <core-module.wasm> <component.wasm>");
        return ExitCode::from(2);
    };
    let result = std::fs::read(input)
        .map_err(|e| format!("{input}: cannot read: {e}"))
        .and_then(|core| componentize::componentize(&core).map_err(|e| format!("{input}: {e}")))
        .and_then(|component| std::fs::write(output, component).map_err(|e| format!("{output}: cannot write: {e}")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
