//! The HTTP client every venue adapter signs its REST requests through: one request
//! timeout for all of them (the receive window is checked against it), rustls with ring.

use std::time::Duration;

use crate::config::HTTP_TIMEOUT;

/// How long opening a TCP and TLS connection may take, within [`HTTP_TIMEOUT`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn client() -> Result<reqwest::Client, String> {
    super::ws::install_tls_provider();
    reqwest::Client::builder().timeout(HTTP_TIMEOUT).connect_timeout(CONNECT_TIMEOUT).build().map_err(|e| format!("HTTP client: {e}"))
}

/// The largest answer read from a venue: Binance's whole `exchangeInfo` is a few MiB. A
/// venue (or something posing as one) that sends more is cut off, not buffered.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// A response body as text, read chunk by chunk up to [`MAX_BODY_BYTES`].
pub async fn read_body(mut response: reqwest::Response) -> Result<String, String> {
    if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(format!("the answer announces {} bytes, over the {} MiB read from a venue", response.content_length().unwrap_or_default(), MAX_BODY_BYTES >> 20));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("the answer runs past the {} MiB read from a venue; cut off", MAX_BODY_BYTES >> 20));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
