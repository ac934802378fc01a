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
