//! The HTTP client every venue adapter signs its REST requests through: one request
//! timeout for all of them (the receive window is checked against it), rustls with ring.

use std::collections::BTreeMap;
use std::sync::Mutex;
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

/// Distinct (method, endpoint, status) rows kept; past it, rows are counted as `other`.
/// The adapters call a fixed set of paths, so this only bounds a bug.
const MAX_REQUEST_ROWS: usize = 256;

/// Requests an adapter sent, by method, endpoint (the path, never the query, which holds
/// signatures) and HTTP status (0: no answer), for the operator's metrics.
#[derive(Debug, Default)]
pub struct RequestCounts(Mutex<BTreeMap<(String, String, u16), u64>>);

impl RequestCounts {
    pub fn count(&self, method: &reqwest::Method, url: &str, status: u16) {
        let path = url::Url::parse(url).map(|u| u.path().to_string()).unwrap_or_else(|_| "unparsable".into());
        let mut rows = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = (method.as_str().to_string(), path, status);
        if !rows.contains_key(&key) && rows.len() >= MAX_REQUEST_ROWS {
            key.1 = "other".into();
        }
        *rows.entry(key).or_default() += 1;
    }

    pub fn rows(&self) -> Vec<((String, String, u16), u64)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_path_without_the_query_and_bounded() {
        let counts = RequestCounts::default();
        counts.count(&reqwest::Method::POST, "http://127.0.0.1:1/api/v3/order?symbol=BTCUSDT&signature=abc", 200);
        counts.count(&reqwest::Method::POST, "http://127.0.0.1:1/api/v3/order?signature=def", 200);
        counts.count(&reqwest::Method::GET, "http://127.0.0.1:1/api/v3/time", 0);
        assert_eq!(counts.rows(), vec![(("GET".into(), "/api/v3/time".into(), 0), 1), (("POST".into(), "/api/v3/order".into(), 200), 2)]);
        for n in 0..1000 {
            counts.count(&reqwest::Method::GET, &format!("http://h/p{n}"), 200);
        }
        let rows = counts.rows();
        assert_eq!(rows.len(), MAX_REQUEST_ROWS + 1);
        assert!(rows.iter().any(|((_, path, _), n)| path == "other" && *n > 700));
    }
}
