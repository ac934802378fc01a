//! Crash recovery: the runtime is killed with SIGKILL in the middle of the demo and
//! started again on the same state. The resumed run must end exactly where an
//! uninterrupted run ends: every fill, order, balance and PnL the same, so no fill was
//! lost and no order sent twice. With the embedded store and with Redis.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use e2e::{root, runtime_binary, RedisServer};

fn strategies() -> Vec<String> {
    ["grid", "hedger", "hello", "cross-asset", "self-trade"].iter().map(|s| e2e::strategy(s).to_string_lossy().into_owned()).collect()
}

fn command(config: &Path, state: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(runtime_binary());
    cmd.arg("--strategies").args(strategies()).arg("--config").arg(config).arg("--state").arg(state).args(["--no-watch", "--log-format", "json"]).args(extra);
    cmd
}

/// The summary without its wall-clock figure, which differs from run to run.
fn summary(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| match l.find(" replayed in ") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn uninterrupted(config: &Path, state: &Path) -> String {
    let out = command(config, state, &["--fresh"]).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    summary(&out.stdout)
}

/// Starts a paced run, kills it with SIGKILL right after its third checkpoint, then
/// runs again on the same state to the end.
fn killed_and_resumed(config: &Path, state: &Path) -> (String, String) {
    let mut child = command(config, state, &["--fresh", "--speed", "2000"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("stderr"));
    let mut killed_at = None;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if entry["fields"]["message"] == "checkpoint written" && entry["fields"]["checkpoint"] == 3 {
            child.kill().unwrap_or_else(|e| panic!("{e}"));
            killed_at = entry["fields"]["batches"].as_u64();
            break;
        }
    }
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(!status.success(), "the first run must have been killed, not finished");
    assert!(killed_at.is_some(), "the first run never wrote its third checkpoint");
    let out = command(config, state, &[]).output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (summary(&out.stdout), stderr)
}

fn assert_resumed(stderr: &str) {
    let resumed = stderr.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find(|e| e["fields"]["message"] == "resumed from checkpoint");
    let resumed = resumed.unwrap_or_else(|| panic!("the second run did not resume:\n{stderr}"));
    assert_eq!(resumed["fields"]["checkpoint"], 3);
}

#[test]
fn kill_9_mid_run_with_the_embedded_store_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = root().join("config/runtime.toml");
    let expected = uninterrupted(&config, &dir.path().join("reference.redb"));
    let (resumed, stderr) = killed_and_resumed(&config, &dir.path().join("crashed.redb"));
    assert_resumed(&stderr);
    assert_eq!(resumed, expected);
}

/// The demo config with its state in Redis under `namespace`.
fn demo_with_redis(dir: &Path, redis: &RedisServer, namespace: &str) -> std::path::PathBuf {
    let demo = std::fs::read_to_string(root().join("config/runtime.toml")).unwrap_or_else(|e| panic!("{e}"));
    let data = root().join("config/market-data");
    let embedded = "backend = \"embedded\"";
    assert!(demo.contains(embedded), "the demo config's [store] table changed");
    let text = demo
        .replace("file = \"market-data/", &format!("file = \"{}/", data.display()))
        .replace(embedded, &format!("backend = \"redis\"\nurl = \"{}\"\nnamespace = \"{namespace}\"", redis.url()));
    let path = dir.join(format!("{namespace}.toml"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

#[test]
fn redis_restarted_mid_run_the_run_goes_on_and_catches_up() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let unused = dir.path().join("unused.redb");
    let expected = uninterrupted(&demo_with_redis(dir.path(), &redis, "reference"), &unused);
    let config = demo_with_redis(dir.path(), &redis, "restarted");
    let mut child = command(&config, &unused, &["--fresh", "--speed", "2000"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("stderr"));
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    for line in lines.by_ref() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if entry["fields"]["message"] == "checkpoint written" && entry["fields"]["checkpoint"] == 2 {
            redis.restart();
            break;
        }
    }
    let rest: Vec<String> = lines.collect();
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", rest.join("\n"));
    assert_eq!(summary(&out.stdout), expected, "trading went on through the restart");
    // The completed run cleared its checkpoint in Redis: the buffered writes got there.
    let left = Command::new("redis-cli").args(["-p", &redis.port.to_string(), "HEXISTS", "runtime:restarted:state", "checkpoint"]).output().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0");
}

#[test]
fn kill_9_mid_run_with_redis_loses_and_repeats_nothing() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let with_redis = |namespace: &str| demo_with_redis(dir.path(), &redis, namespace);
    let unused = dir.path().join("unused.redb");
    let expected = uninterrupted(&with_redis("reference"), &unused);
    let (resumed, stderr) = killed_and_resumed(&with_redis("crashed"), &unused);
    assert_resumed(&stderr);
    assert_eq!(resumed, expected);
    assert!(!unused.exists(), "the embedded store was not used");
}
