//! OKX request signing: Base64 of HMAC-SHA256 over timestamp + METHOD + requestPath +
//! body, sent in `OK-ACCESS-SIGN` with the key, the timestamp and the passphrase.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::venue::secrets::Secret;

/// `timestamp` is the `OK-ACCESS-TIMESTAMP` value (ISO 8601 with milliseconds, UTC);
/// `path` includes the query string of a GET; `body` is empty when there is none.
pub fn sign(secret: &Secret, timestamp: &str, method: &str, path: &str, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(method.to_ascii_uppercase().as_bytes());
    mac.update(path.as_bytes());
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The WebSocket login signature: the same scheme over timestamp (seconds) + `GET` +
/// `/users/self/verify`.
pub fn login_sign(secret: &Secret, timestamp_s: &str) -> String {
    sign(secret, timestamp_s, "GET", "/users/self/verify", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// okx/authentication.md gives the recipe and its inputs but no result; the expected
    /// values were computed independently with `openssl dgst -sha256 -hmac ... -binary |
    /// base64` over the same inputs.
    #[test]
    fn documented_inputs() {
        let secret = Secret::new("22582BD0CFF14C41EDBF1AB98506286D");
        assert_eq!(sign(&secret, "2020-12-08T09:08:57.715Z", "GET", "/api/v5/account/balance?ccy=BTC", ""), "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=");
        let body = r#"{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}"#;
        assert_eq!(sign(&secret, "2020-12-08T09:08:57.715Z", "post", "/api/v5/account/set-leverage", body), "eCnnCgWLjlQ9XnpUkrcny3qNq3WW/81KNrDr/XR6Xv8=");
    }
}
