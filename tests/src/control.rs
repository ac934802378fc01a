//! A client of the runtime's control API for tests: real HTTP to the binary's listener.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The bearer token the tests give the runtime (`RUNTIME_CONTROL_TOKEN`).
pub const TOKEN: &str = "control-test-token-5e1f0a";

pub struct ControlApi {
    pub base: String,
    pub http: reqwest::Client,
    pub rt: tokio::runtime::Runtime,
}

impl ControlApi {
    pub fn new(port: u16) -> ControlApi {
        // reqwest is built without a TLS provider of its own: the runtime's is installed.
        runtime::venue::live::ws::install_tls_provider();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        ControlApi { base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new(), rt }
    }

    /// (status, body) of a request, with `token` as the bearer (none: no header).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let mut request = self.http.request(method.parse().unwrap_or(reqwest::Method::GET), &url);
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            if let Some(b) = body {
                request = request.json(&b);
            }
            match request.send().await {
                Ok(r) => (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null)),
                Err(_) => (0, Value::Null),
            }
        })
    }

    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, Some(TOKEN), None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call("POST", path, Some(TOKEN), Some(body));
        assert_eq!(status, 200, "POST {path}: {answer}");
        answer
    }

    /// Polls `path` until `done` holds for its answer (the engine applies controls between
    /// batches); the deadline only bounds a failure.
    pub fn until(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = self.get(path);
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {body}");
            std::thread::yield_now();
        }
    }
}

/// A port nothing listens on now, for a listener the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"))
}

/// The runtime's log, read on a thread as it is written (a full pipe would stall it); the
/// receiver hears of the control API's start.
pub fn drain_log(child: &mut Child) -> (JoinHandle<String>, Receiver<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("piped stderr"));
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("control API listening") {
                let _ = tx.send(());
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    (reader, rx)
}
