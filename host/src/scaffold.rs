//! `runtime new <name> [--lang rust|python|js]`: writes a strategy project that builds and
//! runs in the demo config at once (a Rust one also passes its own tests). The strategy is
//! the example `hello` in that language under the new name, so a newcomer starts from
//! code that is tested here on every change.

use std::path::{Path, PathBuf};

/// The examples every new project starts from, as this runtime was built with them.
const TEMPLATE: &str = include_str!("../../examples/hello/src/lib.rs");
const TEMPLATE_PYTHON: &str = include_str!("../../examples/hello-python/app.py");
const TEMPLATE_JS: &str = include_str!("../../examples/hello-js/strategy.js");

/// The language of a new project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    /// Built by componentize-py (PyPI); `app.py` exports the strategy.
    Python,
    /// Built by componentize-js (npm); `strategy.js` exports the strategy.
    Js,
}

/// Why a project could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("strategy name {0:?}: use 1 to 24 lower-case letters, digits and dashes, starting with a letter")]
    Name(String),
    #[error("{0}: already exists; choose another name or folder")]
    Exists(PathBuf),
    #[error("the strategy SDK is not at {0} (the runtime's source checkout it was built from); pass --sdk")]
    NoSdk(PathBuf),
    #[error("{path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Where this runtime's sources were when it was built: the SDK and the recorded data the
/// template's test replays are found there.
pub fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Writes `<dir>/<name>/` with the strategy, a README and, in Rust, a Cargo project;
/// returns it.
pub fn new_project(name: &str, dir: &Path, sdk: &Path, lang: Lang) -> Result<PathBuf, ScaffoldError> {
    let valid = (1..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(ScaffoldError::Name(name.to_string()));
    }
    if lang == Lang::Rust && !sdk.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::NoSdk(sdk.to_path_buf()));
    }
    let project = dir.join(name);
    if project.exists() {
        return Err(ScaffoldError::Exists(project));
    }
    let files = match lang {
        Lang::Rust => {
            let data = source_root().join("config/market-data/BTCUSDT-trades-2020-02-22.csv");
            let mut files = vec![
                (PathBuf::from("Cargo.toml"), cargo_toml(name, sdk)),
                (PathBuf::from("src/lib.rs"), strategy_source(name, &data)),
                (PathBuf::from("README.md"), readme(name)),
                (PathBuf::from(".gitignore"), "/target\n".to_string()),
            ];
            // The runtime's lock file pins the same versions it was tested with, resolved offline.
            let lock = std::fs::read_to_string(source_root().join("Cargo.lock")).unwrap_or_default();
            if !lock.is_empty() {
                files.push((PathBuf::from("Cargo.lock"), lock));
            }
            files
        }
        Lang::Python => vec![(PathBuf::from("app.py"), other_source(TEMPLATE_PYTHON, name, "Python")), (PathBuf::from("README.md"), readme_other(name, "app.py", "Python"))],
        Lang::Js => vec![(PathBuf::from("strategy.js"), other_source(TEMPLATE_JS, name, "JavaScript")), (PathBuf::from("README.md"), readme_other(name, "strategy.js", "JavaScript"))],
    };
    for (file, text) in files {
        let path = project.join(file);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text)
        };
        write().map_err(|e| ScaffoldError::Write { path: path.clone(), reason: e.to_string() })?;
    }
    Ok(project)
}

/// `my-maker` -> `MyMaker`.
fn type_name(name: &str) -> String {
    name.split('-').filter(|p| !p.is_empty()).map(|p| p[..1].to_ascii_uppercase() + &p[1..]).collect()
}

fn strategy_source(name: &str, data: &Path) -> String {
    TEMPLATE
        .replace("std::path::Path::new(env!(\"CARGO_MANIFEST_DIR\")).join(\"../../config/market-data/BTCUSDT-trades-2020-02-22.csv\")", &format!("std::path::Path::new({:?})", data.display().to_string()))
        .replace("Hello", &type_name(name))
        .replace("hello", name)
        .replace("Build it with `strategies/build.sh`; it lands in `strategies/", "Build it with `strategies/build.sh <this folder>`; it lands in `strategies/")
}

/// The Python or JavaScript example under a new name: its client order ids take the
/// name as their prefix.
fn other_source(template: &str, name: &str, language: &str) -> String {
    template
        .replace(&format!("The `hello` strategy in {language}: the same logic as examples/hello (Rust), order for order."), &format!("The `{name}` strategy, started from the example `hello` in {language}."))
        .replace("(\"hello\",", &format!("({name:?},"))
}

fn readme_other(name: &str, file: &str, language: &str) -> String {
    let root = source_root();
    format!(
        r#"# {name}

A strategy for the runtime in {language}, started from the example `hello`: it quotes a bid
and an ask around the last trade and keeps its position across hot swaps. `{file}` is all
of it; the contract it implements is `{root}/wit/strategy.wit`, and the guide for
strategies in other languages than Rust is `{root}/examples/LANGUAGES.md`.

- Build the component (it lands in `{root}/strategies/{name}.wasm`; the first build
  installs the pinned toolchain under `{root}/target/`):
  `{root}/strategies/build.sh .`
- Run it in the demo: add to `{root}/config/runtime.toml`

  ```toml
  [[strategy]]
  name = "{name}"
  component = "{name}"
  params = {{ venue = "paper-a", symbol = "BTCUSDT", qty = "0.01" }}
  ```

  and run `runtime --config config/runtime.toml` from `{root}`. Build it again while the
  runtime runs and it is hot-swapped, its state carried over. What it prints goes to the
  runtime's log; an exception that escapes stops it, and the summary names the exception.
"#,
        root = root.display()
    )
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
description = "A trading strategy for the runtime, started from `runtime new`"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
# cdylib: the WebAssembly module; rlib: the native build the tests run.
crate-type = ["cdylib", "rlib"]

[dependencies]
strategy-sdk = {{ path = {sdk:?} }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

# A project of its own, not a member of the runtime's workspace.
[workspace]

# What the runtime's strategies/build.sh builds with: fully optimised, and panic=abort,
# the only panic strategy wasm32 has. Kept identical to the runtime's, so its wasm32
# standard library build is reused.
[profile.wasm]
inherits = "release"
panic = "abort"
opt-level = 3
lto = true
codegen-units = 1
debug = false
strip = true

[profile.release]
debug = false
incremental = true
"#,
        sdk = sdk.display().to_string()
    )
}

fn readme(name: &str) -> String {
    let root = source_root();
    format!(
        r#"# {name}

A strategy for the runtime, started from the example `hello`: it quotes a bid and an ask
around the last trade and keeps its position across hot swaps.

- Test it natively (the SDK's harness, the recorded BTCUSDT trades included):
  `cargo test`
- Build the component (it lands in `{root}/strategies/{name}.wasm`):
  `{root}/strategies/build.sh .`
- Run it in the demo: add to `{root}/config/runtime.toml`

  ```toml
  [[strategy]]
  name = "{name}"
  component = "{name}"
  params = {{ venue = "paper-a", symbol = "BTCUSDT", qty = "0.01" }}
  ```

  and run `runtime --config config/runtime.toml` from `{root}`: a component the config
  names is found as `strategies/<name>.wasm`. Build it again while the runtime runs and it
  is hot-swapped, its state carried over.
"#,
        root = root.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_the_template_takes_the_new_name() {
        for bad in ["", "My", "1abc", "a_b", "ab-", "a".repeat(25).as_str()] {
            assert!(matches!(new_project(bad, Path::new("/nonexistent"), Path::new("/nonexistent"), Lang::Rust), Err(ScaffoldError::Name(_))), "{bad:?}");
        }
        assert_eq!(type_name("my-maker-2"), "MyMaker2");
        let source = strategy_source("my-maker", Path::new("/data/t.csv"));
        assert!(!source.contains("hello") && !source.contains("Hello") && !source.contains("../../"), "{source}");
        assert!(source.contains("struct MyMaker") && source.contains("export_strategy!(MyMaker)") && source.contains("\"/data/t.csv\""));
        for (template, language) in [(TEMPLATE_PYTHON, "Python"), (TEMPLATE_JS, "JavaScript")] {
            let source = other_source(template, "my-maker", language);
            assert!(source.contains("The `my-maker` strategy") && source.contains("(\"my-maker\", [generation"), "{language}: {source}");
        }
    }
}
