//! API credentials: read from the environment or from a file only its owner can read,
//! referenced from config by name, and never printed: `Debug` and `Display` show `***`,
//! and errors name where a secret was looked for, never what it is.

use std::fmt;
use std::path::Path;

use hmac::digest::KeyInit;
use hmac::Hmac;
use sha2::Sha256;

/// A secret string. The only way to read it is [`Secret::expose`], used when signing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An HMAC-SHA256 key made ready once. Keying HMAC hashes the key's inner and outer pads,
/// two SHA-256 compressions that do not depend on what is signed; done at start-up, a
/// signature on the order path costs hashing the payload alone. It holds key material,
/// so like [`Secret`] it shows nothing of it.
#[derive(Clone)]
pub struct HmacKey(Hmac<Sha256>);

impl HmacKey {
    pub fn new(secret: &Secret) -> Self {
        HmacKey(<Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes()).unwrap_or_else(|_| {
            // HMAC takes keys of any length; this cannot happen.
            <Hmac<Sha256> as KeyInit>::new(&Default::default())
        }))
    }

    /// A keyed state to feed what is signed into.
    pub fn mac(&self) -> Hmac<Sha256> {
        self.0.clone()
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set or empty")]
    MissingEnv(String),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{path}: readable by others (mode {mode:o}); make it readable by its owner only (chmod 600)")]
    Exposed { path: String, mode: u32 },
}

/// Reads a secret from an environment variable.
pub fn from_env(var: &str) -> Result<Secret, SecretError> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(Secret(value.trim().to_string())),
        _ => Err(SecretError::MissingEnv(var.to_string())),
    }
}

/// Reads a secret from a file, refusing one that group or others can read.
pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| SecretError::File { path: shown.clone(), reason: e.to_string() })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::Exposed { path: shown, mode });
        }
    }
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| SecretError::File { path: shown.clone(), reason: e.to_string() })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(SecretError::File { path: shown, reason: "empty".into() });
    }
    Ok(Secret(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Credentials {
            key: Secret,
        }
        assert!(!format!("{:?}", Credentials { key: s }).contains("Nhq"));
    }

    #[test]
    fn files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap_or_else(|e| panic!("{e}"));
        let err = from_file(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("readable by others (mode 644)") && !err.contains("s3cret"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_file(&path).map(|s| s.expose().to_string()), Ok("s3cret".to_string()));
    }

    #[test]
    fn a_missing_variable_is_named_not_shown() {
        assert_eq!(from_env("RUNTIME_TEST_SURELY_UNSET_VAR").err(), Some(SecretError::MissingEnv("RUNTIME_TEST_SURELY_UNSET_VAR".into())));
    }
}
