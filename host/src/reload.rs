//! Watches strategy files and the config file, and prepares what changed off the event
//! path: a new component is read, checked, compiled and instantiated for each strategy
//! running it here, on the watcher's thread, and only the finished result is handed to the
//! engine, which initialises it and swaps it in between batches.
//!
//! Editors and build tools write a file in several steps; changes are gathered until the
//! folder has been quiet for [`SETTLE`], and a file whose bytes did not change is left
//! alone (our own reads of a file are events too, and must not make us read it again).
//! A version that fails to load is reported and the running one stays. Only regular files
//! of a bounded size are read, and nothing a file holds can stop the reloader: a panic
//! while loading one is caught and reported like any other refusal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::engine::{Control, Controller, Preparer};
use crate::plugin::PluginHost;

/// Quiet time after the last change before a file is read.
pub const SETTLE: Duration = Duration::from_millis(150);

/// What to watch: strategy files by component name, and the config file.
pub struct Watched {
    pub strategies: HashMap<String, PathBuf>,
    pub config: Option<PathBuf>,
}

/// Keeps the watcher alive; dropping it stops watching.
pub struct Reloader {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching. Fails when a folder cannot be watched.
pub fn spawn(watched: Watched, plugin: PluginHost, control: Controller, preparer: Preparer) -> notify::Result<Reloader> {
    // The watcher's thread is notify's: it starts off the engine's core from the outset.
    crate::affinity::off_engine_core(|| watch(watched, plugin, control, preparer))
}

fn watch(watched: Watched, plugin: PluginHost, control: Controller, preparer: Preparer) -> notify::Result<Reloader> {
    let (tx, rx) = channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })?;
    let mut targets: HashMap<PathBuf, Target> = HashMap::new();
    for (name, path) in &watched.strategies {
        let path = absolute(path);
        let hash = std::fs::read(&path).map(|b| digest(&b)).unwrap_or_default();
        targets.insert(path, Target::Strategy { component: name.clone(), hash });
    }
    if let Some(config) = &watched.config {
        let path = absolute(config);
        let hash = crate::config::read_text(&path).map(|t| digest(t.as_bytes())).unwrap_or_default();
        targets.insert(path, Target::Config { hash });
    }
    let mut folders: Vec<PathBuf> = targets.keys().filter_map(|p| p.parent().map(Path::to_path_buf)).collect();
    folders.sort();
    folders.dedup();
    for folder in &folders {
        watcher.watch(folder, RecursiveMode::NonRecursive)?;
    }
    std::thread::Builder::new()
        .name("reloader".into())
        .spawn(move || watch_loop(rx, targets, plugin, control, preparer))
        .map_err(|e| notify::Error::generic(&e.to_string()))?;
    Ok(Reloader { _watcher: watcher })
}

enum Target {
    Strategy { component: String, hash: String },
    Config { hash: String },
}

fn absolute(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // Resolve the folder (it exists) but not the file, which an editor may be replacing.
    match (path.parent().and_then(|p| p.canonicalize().ok()), path.file_name()) {
        (Some(folder), Some(name)) => folder.join(name),
        _ => path,
    }
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn watch_loop(rx: Receiver<notify::Result<notify::Event>>, mut targets: HashMap<PathBuf, Target>, plugin: PluginHost, control: Controller, preparer: Preparer) {
    let mut changed: Vec<PathBuf> = Vec::new();
    loop {
        let timeout = if changed.is_empty() { Duration::from_secs(3600) } else { SETTLE };
        match rx.recv_timeout(timeout) {
            Ok(Ok(event)) => {
                // Opening, reading and closing a file (ours included) changes nothing.
                use notify::event::{AccessKind, AccessMode};
                if matches!(event.kind, notify::EventKind::Access(kind) if kind != AccessKind::Close(AccessMode::Write)) {
                    continue;
                }
                for path in event.paths {
                    let path = absolute(&path);
                    if targets.contains_key(&path) && !changed.contains(&path) {
                        changed.push(path);
                    }
                }
            }
            Ok(Err(error)) => tracing::warn!("file watcher: {error}"),
            Err(RecvTimeoutError::Timeout) => {
                for path in std::mem::take(&mut changed) {
                    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reload(&path, &mut targets, &plugin, &control, &preparer)));
                    match attempt {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(_) => tracing::error!(path = %path.display(), "loading the changed file failed unexpectedly; the running version stays and watching goes on"),
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Loads one changed file and hands it to the engine; false once the engine is gone.
fn reload(path: &Path, targets: &mut HashMap<PathBuf, Target>, plugin: &PluginHost, control: &Controller, preparer: &Preparer) -> bool {
    let Some(target) = targets.get_mut(path) else { return true };
    match target {
        Target::Strategy { component, hash } => {
            let bytes = match crate::plugin::read_strategy_file(path) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::error!("hot swap refused, the running version stays: {error}");
                    return control.send(Control::SwapFailed { component: component.clone(), reason: error.to_string() }).is_ok();
                }
            };
            let new_hash = digest(&bytes);
            if new_hash == *hash {
                return true;
            }
            *hash = new_hash;
            tracing::info!(path = %path.display(), "strategy file changed; loading the new version");
            match plugin.load_bytes(path, &bytes) {
                Ok(loaded) => {
                    // Instantiated here too, so that the engine's pause is init and the
                    // hand-over of state only.
                    let prepared = preparer.prepare(component, &loaded);
                    control.send(Control::Swap { component: component.clone(), loaded: Arc::new(loaded), prepared }).is_ok()
                }
                Err(error) => {
                    tracing::error!("hot swap refused, the running version stays: {error}");
                    control.send(Control::SwapFailed { component: component.clone(), reason: error.to_string() }).is_ok()
                }
            }
        }
        Target::Config { hash } => {
            let text = match crate::config::read_text(path) {
                Ok(text) => text,
                Err(message) => {
                    let error = crate::config::ConfigError { path: path.display().to_string(), message };
                    tracing::error!("config change rejected, the previous config stays in force: {error}");
                    return control.send(Control::ConfigFailed { reason: error.to_string() }).is_ok();
                }
            };
            let new_hash = digest(text.as_bytes());
            if new_hash == *hash {
                return true;
            }
            *hash = new_hash;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            match Config::parse(&text, &base) {
                Ok(config) => {
                    tracing::info!(path = %path.display(), "config file changed and is valid; applying it");
                    control.send(Control::Config(Box::new(config))).is_ok()
                }
                Err(message) => {
                    let error = crate::config::ConfigError { path: path.display().to_string(), message };
                    tracing::error!("config change rejected, the previous config stays in force: {error}");
                    control.send(Control::ConfigFailed { reason: error.to_string() }).is_ok()
                }
            }
        }
    }
}
