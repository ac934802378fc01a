//! The control API over real HTTP, against the `runtime` binary: the 401s, every read
//! endpoint, halt and resume seen in the strategy's state and orders, a stop, a swap to a given
//! file, a config reload, and the kill switch ending the run with its report.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use e2e::control::{drain_log, free_port, ControlApi as Api, TOKEN};
use e2e::{guest, runtime_binary, strategy, synthetic_venue};
use serde_json::{json, Value};

fn hello(api: &Api) -> Value {
    let all = api.get("/api/strategies");
    all["strategies"].as_array().and_then(|l| l.iter().find(|s| s["name"] == "hello").cloned()).unwrap_or(Value::Null)
}


fn start(dir: &std::path::Path, port: u16) -> (Child, Api, JoinHandle<String>) {
    // A long synthetic feed paced at market speed: the run lasts until the kill switch.
    let config = format!(
        r#"
[store]
backend = "none"
[replay]
speed = 1
{}
[[strategy]]
name = "hello"
component = "hello"
params = {{ venue = "paper", symbol = "BTCUSDT", qty = "0.01", offset_ticks = 20 }}
[[strategy]]
name = "other"
component = "scripted"
params = {{ orders = [
  {{ venue = "paper", symbol = "BTCUSDT", id = "o1", side = "buy", price = "9000", qty = "0.01" }},
  {{ venue = "paper", symbol = "BTCUSDT", id = "o2", side = "sell", price = "11000", qty = "0.01" }},
] }}
"#,
        synthetic_venue(10_000_000)
    );
    let path = dir.join("runtime.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(runtime_binary())
        .args(["--strategies"])
        .arg(strategy("hello"))
        .arg(guest("scripted"))
        .arg("--config")
        .arg(&path)
        .args(["--no-watch", "--control", &format!("127.0.0.1:{port}")])
        .env("RUNTIME_CONTROL_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime::venue::live::ws::install_tls_provider();
    let api = Api::new(port);
    let (log, listening) = drain_log(&mut child);
    listening.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("the control API never started"));
    (child, api, log)
}

#[test]
fn the_control_api_sees_and_steers_a_running_runtime_and_its_kill_switch_ends_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (mut child, api, log) = start(dir.path(), free_port());

    // No token, a wrong one: 401, on reads and on changes alike.
    for (method, path) in [("GET", "/api/strategies"), ("GET", "/api/orders"), ("POST", "/api/kill"), ("POST", "/api/strategies/hello/halt")] {
        assert_eq!(api.call(method, path, None, None).0, 401, "{method} {path} without a token");
        assert_eq!(api.call(method, path, Some("wrong-token-0000"), None).0, 401, "{method} {path} with a wrong token");
    }

    // Hostile bodies: too large, not JSON. Refused with a 4xx; the API stays up.
    let (status, _) = api.call("POST", "/api/strategies/hello/halt", Some(TOKEN), Some(json!({"reason": "x".repeat(20_000)})));
    assert_eq!(status, 413, "a body over 16 KiB");
    let garbage = api.rt.block_on(async {
        let request = api.http.post(format!("{}/api/strategies/hello/swap", api.base)).bearer_auth(TOKEN).header("content-type", "application/json").body("{not json");
        request.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    });
    assert!((400..500).contains(&garbage), "malformed JSON: {garbage}");
    assert_eq!(hello(&api)["state"], "running", "nothing was halted or swapped");

    // Reads: the strategy with its version and counters, its quotes, positions, risk.
    let entry = api.until("/api/strategies", "hello to quote", |all| all["strategies"][0]["counters"]["placed"].as_u64().unwrap_or(0) >= 2);
    let s = &entry["strategies"][0];
    assert_eq!((s["name"].as_str(), s["component"].as_str(), s["state"].as_str()), (Some("hello"), Some("hello"), Some("running")), "{s}");
    assert_eq!(s["version"].as_str().map(str::len), Some(12), "{s}");
    assert_eq!(s["params"]["qty"], "0.01");
    let of = |o: &Value, who: &str| o["orders"].as_array().map(|l| l.iter().filter(|o| o["strategy"] == who).count()).unwrap_or(0);
    let orders = api.until("/api/orders", "two resting quotes each", |o| of(o, "hello") == 2 && of(o, "other") == 2);
    assert!(orders["orders"].as_array().is_some_and(|l| l.iter().all(|o| o["venue"] == "paper" && o["symbol"] == "BTCUSDT")), "{orders}");
    let positions = api.get("/api/positions");
    assert!(positions["balances"][0]["balances"]["USDT"]["total"].is_string(), "{positions}");
    assert!(api.get("/api/fills")["fills"].is_array());
    let risk = api.get("/api/risk");
    assert_eq!(risk["strategies"][0]["max_open_orders"], 200, "{risk}");

    // Halt: seen in its state, its quotes cancelled. Resume: running again.
    assert_eq!(api.call("POST", "/api/strategies/nope/halt", Some(TOKEN), None).0, 404);
    api.post("/api/strategies/hello/halt", json!({"reason": "looking at something"}));
    let halted = api.until("/api/strategies", "the halt", |all| all["strategies"][0]["state"] == "halted");
    assert_eq!(halted["strategies"][0]["why"], "halted by the operator: looking at something");
    api.until("/api/orders", "its quotes cancelled", |o| of(o, "hello") == 0);
    api.post("/api/strategies/hello/resume", json!({}));
    api.until("/api/strategies", "the resume", |all| all["strategies"][0]["state"] == "running");
    api.until("/api/orders", "both quotes again after the resume", |o| of(o, "hello") == 2);

    // Swap to a given file (the same build: a swap all the same), reload the config.
    let (status, refused) = api.call("POST", "/api/strategies/hello/swap", Some(TOKEN), Some(json!({"file": dir.path().join("missing.wasm")})));
    assert_eq!(status, 422, "{refused}");
    api.post("/api/strategies/hello/swap", json!({"file": strategy("hello")}));
    api.until("/api/strategies", "the swap", |all| all["strategies"][0]["counters"]["swaps"] == 1);
    api.post("/api/config/reload", json!({}));
    assert_eq!(hello(&api)["state"], "running");

    // Stop one strategy: it is called no more, its quotes are cancelled, the other runs on.
    api.post("/api/strategies/other/stop", json!({"reason": "not needed"}));
    let stopped = api.until("/api/strategies", "the stop", |all| all["strategies"][1]["state"] == "stopped");
    assert_eq!(stopped["strategies"][1]["why"], "stopped by the operator: not needed");
    api.until("/api/orders", "its quotes cancelled", |o| of(o, "other") == 0);
    assert_eq!(hello(&api)["state"], "running");

    // Prometheus metrics: no token on loopback; the stopped strategy's counters are the
    // API's, figure for figure.
    let scraped = api.rt.block_on(async { api.http.get(format!("{}/metrics", api.base)).send().await?.text().await }).unwrap_or_else(|e| panic!("{e}"));
    let metric = |name: &str, strategy: &str| -> Option<u64> {
        let prefix = format!("{name}{{strategy=\"{strategy}\"}} ");
        scraped.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
    };
    let other = api.get("/api/strategies")["strategies"][1]["counters"].clone();
    for (name, counter) in [("runtime_strategy_orders_placed_total", "placed"), ("runtime_strategy_events_total", "events"), ("runtime_strategy_calls_total", "calls"), ("runtime_strategy_orders_canceled_total", "canceled")] {
        assert_eq!(metric(name, "other"), other[counter].as_u64(), "{name}: {scraped}");
    }
    assert_eq!(metric("runtime_strategy_running", "other"), Some(0), "{scraped}");
    assert_eq!(metric("runtime_strategy_running", "hello"), Some(1), "{scraped}");
    assert!(scraped.contains("# TYPE runtime_strategy_pnl_quote gauge") && scraped.contains("runtime_market_prints_total "), "{scraped}");

    // The kill switch: every order cancelled and confirmed, the strategy stopped, the run
    // over, the report printed.
    api.until("/api/orders", "quotes again", |o| of(o, "hello") > 0);
    let (status, refused) = api.call("POST", "/api/kill", Some(TOKEN), Some(json!({"account": "yes"})));
    assert_eq!(status, 422, "a kill switch asked for something it cannot read is refused: {refused}");
    assert_eq!(hello(&api)["state"], "running");
    let report = api.post("/api/kill", json!({"account": true}));
    assert_eq!(report["stopped"], json!(["hello"]), "{report}");
    assert_eq!(report["account"], json!([]), "a paper venue's account holds only the runtime's orders: {report}");
    assert!(report["cancelled"].as_array().is_some_and(|l| !l.is_empty()), "{report}");
    assert_eq!(report["not_confirmed"], json!([]), "{report}");
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    let mut stdout = String::new();
    let _ = child.stdout.take().map(|mut o| o.read_to_string(&mut stdout));
    let stderr = log.join().unwrap_or_default();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stdout.contains("hello (hello @") && stdout.contains("STOPPED: kill switch: control API") && stdout.contains("kill switch: stopped hello"), "{stdout}");
    // hello heard of its halt and its resume (its own log lines, through the host's log).
    assert!(stderr.contains("halted by the host: halted by the operator: looking at something") && stderr.contains("resumed by the host"), "{stderr}");
    // Refusals are logged, the tokens never.
    assert!(stderr.contains("control API: refused") && !stderr.contains("wrong-token-0000") && !stderr.contains(TOKEN), "{stderr}");
    assert!(stderr.contains("control API: halted hello (looking at something)"), "state changes are logged");
}

/// A control API open to the network without a token is refused at start, with why.
#[test]
fn a_non_loopback_control_address_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("runtime.toml");
    std::fs::write(&path, format!("[store]\nbackend = \"none\"\n{}", synthetic_venue(10))).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(runtime_binary())
        .arg("--config")
        .arg(&path)
        .args(["--no-watch", "--control", "0.0.0.0:0"])
        .env_remove("RUNTIME_CONTROL_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("control API on 0.0.0.0:0: a non-loopback address needs a token"), "{stderr}");
}

/// `control.metrics_need_token = true`: `/metrics` asks for the token even on loopback,
/// like every other endpoint, and takes it.
#[test]
fn metrics_can_be_put_behind_the_token() {
    let (controller, requests) = runtime::engine::Controller::detached();
    let wiring = runtime::control::Wiring { controller, plugin: e2e::plugin_host(), config_path: None, metrics_need_token: true };
    let listen = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    let server = runtime::control::start(listen, Some(runtime::secrets::Secret::new(TOKEN)), wiring).unwrap_or_else(|e| panic!("{e}"));
    let api = Api::new(server.addr.port());
    assert_eq!(api.call("GET", "/metrics", None, None).0, 401, "no token");
    assert_eq!(api.call("GET", "/metrics", Some("wrong-token"), None).0, 401, "a wrong token");
    // With the token the request reaches the engine, which this test plays: it drops the
    // question unanswered, so the endpoint says the engine did not answer.
    drop(requests);
    let (status, _) = api.call("GET", "/metrics", Some(TOKEN), None);
    assert!(status != 401 && status != 0, "the token is taken: {status}");
}
