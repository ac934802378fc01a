//! The HTTP client every venue adapter signs its REST requests through: one request
//! timeout for all of them (the receive window is checked against it), rustls with ring.

use std::collections::{BTreeMap, HashMap};
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

/// Endpoints whose parsed URL is kept: the adapters call a fixed set of paths, so this
/// only bounds a bug; past it, URLs are parsed on every request, as before.
const MAX_PARSED_URLS: usize = 64;

/// The URLs of the requests an adapter sends without a query, parsed once. Given text,
/// the HTTP client parses the URL on every request (about a microsecond, on the order's
/// way out: a placement's signed parameters travel in its body, so its URL is the same
/// every time).
#[derive(Debug, Default)]
pub struct ParsedUrls(Mutex<HashMap<String, reqwest::Url>>);

impl ParsedUrls {
    /// A request to `url`, through its parsed URL when it has no query (one with a query
    /// carries a signature, different every time). A URL that does not parse is handed
    /// over as text, for the client to say what is wrong with it, as before.
    pub fn request(&self, client: &reqwest::Client, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        match self.parsed(url) {
            Some(parsed) => client.request(method, parsed),
            None => client.request(method, url),
        }
    }

    fn parsed(&self, url: &str) -> Option<reqwest::Url> {
        if url.contains('?') {
            return None;
        }
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(parsed) = known.get(url) {
            return Some(parsed.clone());
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        if known.len() < MAX_PARSED_URLS {
            known.insert(url.to_string(), parsed.clone());
        }
        Some(parsed)
    }
}

/// A header carrying a credential, built once at the start rather than for every request:
/// marked sensitive, so that the HTTP client leaves it out of what it prints and HTTP/2
/// does not index it. A credential that cannot be a header value would fail every request
/// the venue is sent, so it stops the start, named by `what` and never shown.
pub fn credential_header(what: &str, value: &str) -> Result<reqwest::header::HeaderValue, String> {
    let mut header = reqwest::header::HeaderValue::from_str(value).map_err(|_| format!("the {what} cannot be sent in an HTTP header: it holds a control character (a line break, say)"))?;
    header.set_sensitive(true);
    Ok(header)
}

/// The path of a URL, without its query: what the request counts are kept by. Read off
/// the text, not parsed (the adapters' URLs are their own).
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("/", |at| &rest[at..]);
    path.split(['?', '#']).next().unwrap_or(path)
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
        let mut rows = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = (method.as_str().to_string(), path_of(url).to_string(), status);
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

    /// The path read off the text is the one a URL parser finds.
    #[test]
    fn the_path_read_off_the_text_is_the_parsed_one() {
        for url in ["http://127.0.0.1:1/api/v3/order?symbol=BTCUSDT&signature=abc", "https://www.okx.com/api/v5/trade/order", "http://h:8/a/b#frag", "http://h?x=1", "http://h", "https://user@h:443/fapi/v1/order?x=/y"] {
            let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(path_of(url), parsed.path(), "{url}");
        }
    }

    /// A URL without a query is parsed once and the same after; one with a query, or one
    /// that does not parse, is not kept; past the bound, nothing more is kept.
    #[test]
    fn query_less_urls_are_parsed_once_and_bounded() {
        let urls = ParsedUrls::default();
        let client = client().unwrap_or_else(|e| panic!("{e}"));
        let built = |url: &str| urls.request(&client, reqwest::Method::POST, url).build().map(|r| r.url().to_string()).map_err(|e| e.to_string());
        assert_eq!(built("http://127.0.0.1:1/api/v3/order"), Ok("http://127.0.0.1:1/api/v3/order".into()));
        assert_eq!(built("http://127.0.0.1:1/api/v3/order"), Ok("http://127.0.0.1:1/api/v3/order".into()));
        assert_eq!(built("http://127.0.0.1:1/api/v3/order?timestamp=1&signature=ab"), Ok("http://127.0.0.1:1/api/v3/order?timestamp=1&signature=ab".into()));
        assert!(built("http://[not a host/").is_err());
        assert_eq!(urls.0.lock().map(|k| k.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(), vec!["http://127.0.0.1:1/api/v3/order".to_string()]);
        for n in 0..200 {
            assert_eq!(built(&format!("http://h/p{n}")), Ok(format!("http://h/p{n}")));
        }
        assert_eq!(urls.0.lock().map(|k| k.len()).unwrap_or_default(), MAX_PARSED_URLS);
    }

    #[test]
    fn a_credential_header_is_sensitive_and_never_printed() {
        let header = credential_header("API key", "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A").unwrap_or_else(|e| panic!("{e}"));
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("vmPUZE"), "{header:?}");
        let refused = credential_header("API key", "vmPUZE6mv9SD5\n").err().unwrap_or_default();
        assert!(refused.starts_with("the API key cannot be sent in an HTTP header") && !refused.contains("vmPUZE"), "{refused}");
    }
}
