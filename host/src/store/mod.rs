//! Durable state: where checkpoints of the engine live, behind one small trait.
//!
//! Two backends, chosen in config: an embedded store (redb, a file beside the config) that
//! needs no server, so the demo and a single machine have durability with zero set-up; and
//! Redis, for several processes sharing one store. A commit is atomic: a checkpoint is
//! either all there or not at all.

pub mod embedded;
pub mod redis;

use std::path::Path;

/// One change within a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put(String, Vec<u8>),
    Delete(String),
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The backend answered with an error, or could not be reached.
    #[error("{backend}: {reason}")]
    Backend { backend: String, reason: String },
    /// A stored value is not what this version of the runtime wrote.
    #[error("{backend}: stored value {key:?} is unreadable: {reason}")]
    Corrupt { backend: String, key: String, reason: String },
}

/// A key/value store with atomic multi-key commits.
pub trait StateStore: Send {
    /// Applies all writes atomically. A backend that is unreachable for a while may keep
    /// the commit in memory and apply it, in order, once it is back ([`StateStore::buffered`]
    /// says how many are waiting); it fails only when it cannot even do that.
    fn commit(&mut self, writes: Vec<Write>) -> Result<(), StoreError>;
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Commits accepted but not yet durable in the backend.
    fn buffered(&self) -> usize;
    /// Bytes (keys and values) those commits hold in memory.
    fn buffered_bytes(&self) -> usize;
    /// Tries to make buffered commits durable now; fails while the backend is away.
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Where the state lives, for logs (never a password).
    fn describe(&self) -> String;
    /// Times the backend became unreachable since the start (an embedded file: never).
    fn outages(&self) -> u64;
}

/// Which backend, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Embedded { path: std::path::PathBuf },
    Redis { url: String, namespace: String },
}

/// Opens the configured backend. Fails when the file cannot be opened or Redis cannot be
/// reached at start (a runtime that cannot read its state must not trade).
pub fn open(backend: &Backend) -> Result<Box<dyn StateStore>, StoreError> {
    match backend {
        Backend::Embedded { path } => Ok(Box::new(embedded::Embedded::open(path)?)),
        Backend::Redis { url, namespace } => Ok(Box::new(redis::RedisStore::connect(url, namespace)?)),
    }
}

/// A Redis URL with any password replaced, for logs and errors: the user info before
/// `@`, and the whole query (`?password=`, `?pass=`...), which may carry one too.
pub fn redact_url(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, _)) => (url, "?***"),
        None => (url, ""),
    };
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}{query}", &url[..scheme], &url[at + 1..]),
        _ => format!("{url}{query}"),
    }
}

/// The embedded store's default file, beside the config.
pub fn default_path(config_dir: &Path) -> std::path::PathBuf {
    config_dir.join("state").join("runtime.redb")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(redact_url("redis://user:s3cret@127.0.0.1:6379/0"), "redis://***@127.0.0.1:6379/0");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("redis://127.0.0.1:6379/0?pass=s3cret"), "redis://127.0.0.1:6379/0?***");
        assert_eq!(redact_url("redis://u:p@127.0.0.1:6379/0?password=s3cret"), "redis://***@127.0.0.1:6379/0?***");
    }
}
