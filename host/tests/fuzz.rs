//! Property tests of everything that parses input from outside: exchange messages, the
//! config file, the replay's lines (in `feed::replay`) and strategy files. Whatever the
//! input, the parser answers (a value or an error) and never panics, and the parsers of
//! messages and configs allocate at most [`ALLOCATION_CAP_PER_BYTE`] bytes per input byte
//! plus [`ALLOCATION_CAP_BASE`] at their peak (what a WebSocket frame or a config file may
//! cost, whatever it holds; the component loader compiles on worker threads and is held
//! to the sandbox's own limits instead).
//!
//! The run in the test command is bounded (a few hundred cases each, a few dozen for the
//! component loader, which compiles); for a longer run set `PROPTEST_CASES`, e.g.
//! `PROPTEST_CASES=100000 cargo test --release -p runtime --test fuzz`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use runtime::config::Config;
use runtime::plugin::{PluginHost, SandboxLimits};
use runtime::venue::binance::{rest as binance_rest, websocket as binance_ws};
use runtime::venue::okx::{rest as okx_rest, websocket as okx_ws};

/// The stated caps on what one parse may allocate at its peak.
const ALLOCATION_CAP_PER_BYTE: usize = 64;
const ALLOCATION_CAP_BASE: usize = 1 << 20;

/// The system allocator, counting per thread the bytes allocated and not yet freed and
/// their peak, so one parse on one thread can be measured.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `parse` and checks the peak of what it allocated on this thread against the cap
/// for an input of `input_len` bytes.
fn within_cap(input_len: usize, parse: impl FnOnce()) -> Result<(), TestCaseError> {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    parse();
    let peak = (PEAK.with(Cell::get) - base).max(0) as usize;
    let cap = input_len * ALLOCATION_CAP_PER_BYTE + ALLOCATION_CAP_BASE;
    prop_assert!(peak <= cap, "{peak} bytes at the peak for {input_len} bytes of input (cap {cap})");
    Ok(())
}

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One wasm engine for every case: each `PluginHost` starts an epoch thread of its own.
fn plugin() -> &'static PluginHost {
    static PLUGIN: std::sync::OnceLock<PluginHost> = std::sync::OnceLock::new();
    PLUGIN.get_or_init(|| PluginHost::new(SandboxLimits { call_timeout: Duration::from_millis(200), memory_bytes: 64 << 20 }).unwrap_or_else(|e| panic!("{e:#}")))
}

fn sample(path: &str) -> String {
    std::fs::read_to_string(root().join("host/src/venue").join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every text parser of the adapters, fed the same message.
fn parse_everything(text: &str) {
    let _ = binance_ws::parse_spot(text);
    let _ = binance_ws::parse_usdm(text);
    let _ = binance_rest::parse_public_trade(text);
    let _ = binance_rest::parse_depth_update(text);
    let _ = okx_ws::parse_orders(text);
    let _ = okx_rest::parse_books(text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = binance_rest::parse_order(&value);
        let _ = binance_rest::parse_rules(&value);
        let _ = okx_rest::parse_instruments(&value);
        let _ = okx_rest::parse_trades(&value);
        if let Some(first) = value.get("data").and_then(|d| d.get(0)) {
            let _ = okx_rest::parse_instruments(&serde_json::json!({"data": [first]}));
        }
    }
}

/// Values a hostile venue might put in any field.
fn nasty_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::json!("79228162514264337593543950335")),
        Just(serde_json::json!("-79228162514264337593543950335")),
        Just(serde_json::json!("1e40")),
        Just(serde_json::json!("0")),
        Just(serde_json::json!("")),
        Just(serde_json::json!(null)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        Just(serde_json::json!(1e308)),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        ".{0,20}".prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
    ]
}

/// Replaces one field, at any depth, of a JSON value.
fn mutate(value: &mut serde_json::Value, pick: usize, with: &serde_json::Value) {
    let mut n = 0;
    fn walk(v: &mut serde_json::Value, pick: usize, n: &mut usize, with: &serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (_, child) in map.iter_mut() {
                    if *n == pick {
                        *child = with.clone();
                    }
                    *n += 1;
                    walk(child, pick, n, with);
                }
            }
            serde_json::Value::Array(items) => {
                for child in items.iter_mut() {
                    if *n == pick {
                        *child = with.clone();
                    }
                    *n += 1;
                    walk(child, pick, n, with);
                }
            }
            _ => {}
        }
    }
    walk(value, pick, &mut n, with);
}

fn samples() -> Vec<serde_json::Value> {
    let mut all: Vec<serde_json::Value> = ["binance/test_data/spot_execution_report_new.json", "binance/test_data/spot_execution_report_trade.json", "binance/test_data/usdm_order_trade_update.json", "okx/test_data/orders_push.json"]
        .iter()
        .map(|p| serde_json::from_str(&sample(p)).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect();
    all.push(serde_json::json!({"e":"trade","E":1,"s":"BTCUSDT","t":12345,"p":"0.001","q":"100","T":1672515782136_i64,"m":true}));
    all.push(serde_json::json!({"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}));
    all.push(serde_json::json!({"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"]],"ts":"1597026383085","checksum":-855196043_i64,"seqId":123457,"prevSeqId":123456}]}));
    all.push(serde_json::json!({"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":"130639474","px":"42219.9","sz":"0.12","side":"buy","ts":"1630048897897"}]}));
    all.push(serde_json::json!({"code":"0","data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP","ctVal":"0.01","ctValCcy":"BTC","settleCcy":"USDT","tickSz":"0.1","lotSz":"0.01","minSz":"0.01"}]}));
    all.push(serde_json::json!({"symbols":[{"symbol":"BTCUSDT","baseAsset":"BTC","quoteAsset":"USDT","filters":[{"filterType":"PRICE_FILTER","tickSize":"0.01"},{"filterType":"LOT_SIZE","stepSize":"0.00001","minQty":"0.00001"},{"filterType":"NOTIONAL","minNotional":"5"}]}]}));
    all
}

/// `default` cases, or `PROPTEST_CASES` for a longer run (an explicit case count would
/// otherwise take precedence over the variable).
fn cases(default: u32) -> ProptestConfig {
    ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

proptest! {
    #![proptest_config(cases(500))]

    #[test]
    fn any_text_is_a_message_or_an_error(text in ".{0,400}") {
        within_cap(text.len(), || parse_everything(&text))?;
    }

    #[test]
    fn documented_messages_with_hostile_fields(which in 0usize..10, pick in 0usize..60, with in nasty_value()) {
        let all = samples();
        let mut message = all[which % all.len()].clone();
        mutate(&mut message, pick, &with);
        let text = message.to_string();
        within_cap(text.len(), || parse_everything(&text))?;
    }

    #[test]
    fn configs_cut_or_changed_anywhere(cut in 0usize..4000, at in 0usize..4000, junk in "[\\[\\]=\"a-z0-9._ \\n-]{0,12}") {
        let text = std::fs::read_to_string(root().join("config/runtime.toml")).unwrap_or_default();
        let cut = cut.min(text.len());
        let at = at.min(cut);
        let (Some(head), Some(tail)) = (text.get(..at), text.get(at..cut)) else { return Ok(()) };
        let mutated = format!("{head}{junk}{tail}");
        let base = root().join("config");
        within_cap(mutated.len(), || { let _ = Config::parse(&mutated, &base); })?;
    }
}

proptest! {
    #![proptest_config(cases(24))]

    /// A strategy file cut short or with bytes changed: refused with a reason (or, if it
    /// still happens to be valid, loaded), never a panic, for a core module and a component.
    /// Half the cases keep the whole file, so changed bytes reach validation and compilation
    /// rather than stopping at a truncated section.
    #[test]
    fn strategy_files_cut_or_flipped(component in any::<bool>(), cut in prop_oneof![Just(1.0f64), 0.0f64..1.0], flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 1..4)) {
        let path = if component { root().join("strategies/hello.wasm") } else { root().join("target/guests/core/counter-v1.wasm") };
        let Ok(mut bytes) = std::fs::read(&path) else { return Ok(()) };
        let len = ((bytes.len() as f64) * cut) as usize;
        bytes.truncate(len.max(8));
        for (at, byte) in flips {
            let i = ((bytes.len() as f64) * at) as usize;
            if let Some(b) = bytes.get_mut(i) {
                *b = byte;
            }
        }
        let _ = plugin().load_bytes(&path, &bytes);
    }
}

#[test]
fn a_truncated_core_module_is_refused_with_a_reason() {
    let path = root().join("target/guests/core/counter-v1.wasm");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run strategies/build.sh)", path.display()));
    for keep in [9, 100, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let error = plugin().load_bytes(&path, &bytes[..keep]).err().map(|e| e.to_string()).unwrap_or_else(|| panic!("{keep} bytes loaded"));
        assert!(error.contains("counter-v1.wasm"), "{error}");
    }
}

/// A large message (a depth diff of 20,000 levels a side, about 1 MB) stays within the cap
/// too: the cap is per input byte, so a venue's large frame costs in proportion.
#[test]
fn a_large_message_is_parsed_within_the_cap() -> Result<(), TestCaseError> {
    let levels: Vec<serde_json::Value> = (0..20_000).map(|i| serde_json::json!([format!("{}.5", 30_000 + i), "0.125"])).collect();
    let text = serde_json::json!({"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":157,"u":160,"pu":149,"b":levels,"a":levels}).to_string();
    assert!(text.len() > 500_000, "{}", text.len());
    within_cap(text.len(), || parse_everything(&text))
}
