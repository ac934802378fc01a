//! A WASI without capabilities, for strategies written in languages whose toolchains
//! import WASI (Python through componentize-py, JavaScript through componentize-js).
//!
//! The contract's own imports stay the API; WASI is there only so that an interpreter
//! can start and print. What it gets:
//! - stdout and stderr go to the strategy's log, line by line, within the same budget as
//!   the `log` import (stdout at info, stderr at warn); the last lines of stderr are kept so
//!   that a trap can say what the guest printed before it (a Python traceback);
//! - the wall clock and the monotonic clock are the event clock, so a replay is
//!   deterministic, and waiting on a clock returns at once rather than stalling the
//!   engine (nothing a strategy does may block the market-data loop);
//! - random comes from a generator seeded per instance;
//! - no stdin, no environment, no arguments, no preopened directory (so no file can be
//!   opened), no network (sockets, connections and name lookups are refused);
//! - at most [`MAX_RESOURCES`] live handles (streams, pollables), so a guest that opens
//!   handles in a loop is refused rather than growing the host's memory.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use rand_wasi::SeedableRng;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::capabilities::SharedLogBudget;
use super::HostState;
use crate::market::EventClock;
use crate::model::shown;

/// Live WASI handles an instance may hold at once.
pub const MAX_RESOURCES: usize = 4096;
/// A line longer than this is logged in pieces.
const MAX_LINE_BYTES: usize = 4096;
/// Lines of stderr kept for the report of a trap.
const TAIL_LINES: usize = 8;

/// The WASI packages a strategy may import, at 0.2.x. Anything else (wasi:http,
/// wasi:keyvalue...) is refused at load with its name.
pub const PROVIDED: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Whether `name` (`wasi:cli/stdout@0.2.9`) is a WASI interface this sandbox provides.
pub fn provided(name: &str) -> bool {
    let Some((interface, version)) = name.split_once('@') else { return false };
    PROVIDED.contains(&interface) && version.starts_with("0.2.")
}

/// The WASI part of an instance's store.
pub struct Wasi {
    ctx: WasiCtx,
    table: ResourceTable,
    console: Console,
}

impl Wasi {
    pub fn new(strategy: &str, seed: u64, clock: EventClock, budget: SharedLogBudget) -> Self {
        let console = Console::new(strategy, budget);
        let ctx = WasiCtxBuilder::new()
            .stdout(GuestOutput { console: console.clone(), stream: Stream::Stdout })
            .stderr(GuestOutput { console: console.clone(), stream: Stream::Stderr })
            .wall_clock(EventWallClock(clock.clone()))
            .monotonic_clock(EventMonotonicClock(clock))
            .secure_random(rand_wasi::rngs::StdRng::seed_from_u64(seed ^ 0x5741_5349))
            .insecure_random(rand_wasi::rngs::StdRng::seed_from_u64(seed ^ 0x494e_5345))
            .insecure_random_seed(u128::from(seed))
            .max_random_size(1 << 20)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Wasi { ctx, table, console }
    }

    /// Logs what the guest left without a newline; called after each call.
    pub fn flush(&self) {
        self.console.flush();
    }

    /// Forgets the stderr lines of earlier calls: a trap reports only its own call's.
    pub fn clear_tail(&self) {
        if taken(&self.console.0.written_since_clear) {
            self.console.lock().tail.clear();
        }
    }

    /// The last lines the guest wrote to stderr during this call, joined.
    pub fn stderr_tail(&self) -> Option<String> {
        self.flush();
        let lines = self.console.lock();
        (!lines.tail.is_empty()).then(|| lines.tail.iter().cloned().collect::<Vec<_>>().join(" | "))
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi.ctx, table: &mut self.wasi.table }
    }
}

/// Adds WASI to the linker, with the monotonic clock's waits replaced by ones that are
/// ready at once (wasmtime-wasi's would sleep on the real clock, blocking the engine).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    monotonic_clock::add_to_linker::<HostState, EventTimeData>(linker, |s| EventTime { clock: &s.clock, table: &mut s.wasi.table })?;
    linker.allow_shadowing(false);
    Ok(())
}

struct EventWallClock(EventClock);

impl HostWallClock for EventWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now_ms()).unwrap_or(0))
    }
}

struct EventMonotonicClock(EventClock);

impl HostMonotonicClock for EventMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.now_ms()).unwrap_or(0).saturating_mul(1_000_000)
    }
}

struct EventTimeData;

impl HasData for EventTimeData {
    type Data<'a> = EventTime<'a>;
}

/// `wasi:clocks/monotonic-clock` on the event clock.
struct EventTime<'a> {
    clock: &'a EventClock,
    table: &'a mut ResourceTable,
}

/// A wait that is over as soon as it starts.
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

impl EventTime<'_> {
    fn ready(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(Ready)?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }
}

impl monotonic_clock::Host for EventTime<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(EventMonotonicClock(self.clock.clone()).now())
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1_000_000)
    }

    fn subscribe_instant(&mut self, _when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        self.ready()
    }

    fn subscribe_duration(&mut self, _duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        self.ready()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// What an instance printed and has not yet logged, shared by its stdout and stderr
/// handles (a guest may open several).
#[derive(Clone)]
struct Console(Arc<ConsoleShared>);

/// The flags say whether the guest wrote at all, so that the flush after every call and
/// the clearing before it take no lock for a guest that prints nothing (most calls).
struct ConsoleShared {
    lines: Mutex<ConsoleLines>,
    written_since_flush: AtomicBool,
    written_since_clear: AtomicBool,
}

struct ConsoleLines {
    strategy: String,
    budget: SharedLogBudget,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    tail: VecDeque<String>,
}

impl Console {
    fn new(strategy: &str, budget: SharedLogBudget) -> Self {
        let lines = ConsoleLines { strategy: strategy.to_string(), budget, stdout: Vec::new(), stderr: Vec::new(), tail: VecDeque::new() };
        Console(Arc::new(ConsoleShared { lines: Mutex::new(lines), written_since_flush: AtomicBool::new(false), written_since_clear: AtomicBool::new(false) }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConsoleLines> {
        self.0.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut lines = self.lock();
        let lines = &mut *lines;
        let pending = match stream {
            Stream::Stdout => &mut lines.stdout,
            Stream::Stderr => &mut lines.stderr,
        };
        pending.extend_from_slice(bytes);
        // Set under the lock, after the bytes are in: a flush that finds it clear has
        // nothing to miss.
        self.0.written_since_flush.store(true, Ordering::Release);
        self.0.written_since_clear.store(true, Ordering::Release);
        let mut complete = Vec::new();
        loop {
            let cut = match pending.iter().position(|b| *b == b'\n') {
                Some(newline) => newline + 1,
                None if pending.len() > MAX_LINE_BYTES => MAX_LINE_BYTES,
                None => break,
            };
            let rest = pending.split_off(cut);
            complete.push(std::mem::replace(pending, rest));
        }
        for line in complete {
            emit(&lines.strategy, &lines.budget, &mut lines.tail, stream, &line);
        }
    }

    fn flush(&self) {
        if !taken(&self.0.written_since_flush) {
            return;
        }
        let mut lines = self.lock();
        let lines = &mut *lines;
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(match stream {
                Stream::Stdout => &mut lines.stdout,
                Stream::Stderr => &mut lines.stderr,
            });
            if !pending.is_empty() {
                emit(&lines.strategy, &lines.budget, &mut lines.tail, stream, &pending);
            }
        }
    }
}

/// Whether `flag` was set, clearing it. Read before the exchange: after nearly every call
/// the guest wrote nothing, and a read is cheaper than an exchange.
fn taken(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Acquire) && flag.swap(false, Ordering::AcqRel)
}

fn emit(strategy: &str, budget: &SharedLogBudget, tail: &mut VecDeque<String>, stream: Stream, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return;
    }
    let message = shown(text, super::capabilities::MAX_MESSAGE_CHARS);
    if stream == Stream::Stderr {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(shown(text.trim(), 200));
    }
    if !budget.lock().unwrap_or_else(|p| p.into_inner()).admit(message.len()) {
        return;
    }
    match stream {
        Stream::Stdout => tracing::info!(target: "strategy", strategy, stream = "stdout", "{message}"),
        Stream::Stderr => tracing::warn!(target: "strategy", strategy, stream = "stderr", "{message}"),
    }
}

/// A guest's stdout or stderr.
struct GuestOutput {
    console: Console,
    stream: Stream,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(GuestOutput { console: self.console.clone(), stream: self.stream })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(GuestOutput { console: self.console.clone(), stream: self.stream })
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.console.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE_BYTES)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.console.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_interfaces_at_0_2_are_provided() {
        assert!(provided("wasi:cli/stdout@0.2.9"));
        assert!(provided("wasi:io/poll@0.2.12"));
        assert!(!provided("wasi:http/outgoing-handler@0.2.9"));
        assert!(!provided("wasi:cli/stdout@0.3.0"));
        assert!(!provided("wasi:cli/stdout"));
    }

    #[test]
    fn a_guest_cannot_hold_more_than_the_cap_of_handles() {
        let clock = EventClock::default();
        let mut wasi = Wasi::new("t", 1, clock.clone(), Arc::new(Mutex::new(super::super::capabilities::LogBudget::new("t"))));
        let mut time = EventTime { clock: &clock, table: &mut wasi.table };
        // Each wait is a pollable and the resource it waits on: two handles.
        let held: Vec<_> = (0..MAX_RESOURCES).map_while(|_| monotonic_clock::Host::subscribe_duration(&mut time, 1_000_000_000).ok()).collect();
        assert_eq!(held.len(), MAX_RESOURCES / 2);
        assert!(monotonic_clock::Host::subscribe_duration(&mut time, 1).is_err(), "past the cap, the host refuses (the call traps)");
    }

    #[test]
    fn lines_are_cut_at_newlines_and_a_long_line_in_pieces() {
        let budget: SharedLogBudget = Arc::new(Mutex::new(super::super::capabilities::LogBudget::new("t")));
        let console = Console::new("t", budget);
        console.write(Stream::Stderr, b"Traceback\n  line 1\nZeroDivision");
        assert_eq!(console.lock().tail.iter().cloned().collect::<Vec<_>>(), ["Traceback", "line 1"]);
        console.flush();
        assert_eq!(console.lock().tail.back().map(String::as_str), Some("ZeroDivision"));
        console.write(Stream::Stdout, &vec![b'x'; MAX_LINE_BYTES * 3 + 5]);
        assert_eq!(console.lock().stdout.len(), 5, "three full pieces logged, the rest kept");
        for n in 0..10 {
            console.write(Stream::Stderr, format!("line {n}\n").as_bytes());
        }
        assert_eq!(console.lock().tail.len(), TAIL_LINES);
    }

    /// The lock-free skips of flush and clear never lose what the guest wrote.
    #[test]
    fn a_call_that_printed_nothing_keeps_nothing_and_loses_nothing() {
        let wasi = Wasi::new("t", 1, EventClock::default(), Arc::new(Mutex::new(super::super::capabilities::LogBudget::new("t"))));
        wasi.clear_tail();
        wasi.flush();
        assert_eq!(wasi.stderr_tail(), None);
        wasi.console.write(Stream::Stderr, b"first\nhalf a line");
        wasi.flush();
        assert_eq!(wasi.stderr_tail().as_deref(), Some("first | half a line"));
        // The next call: the tail of the last one goes, then nothing is written.
        wasi.clear_tail();
        wasi.flush();
        assert_eq!(wasi.stderr_tail(), None);
        wasi.clear_tail();
        assert_eq!(wasi.stderr_tail(), None);
        wasi.console.write(Stream::Stderr, b"no newline");
        assert_eq!(wasi.stderr_tail().as_deref(), Some("no newline"), "the tail flushes what is pending");
        wasi.clear_tail();
        assert_eq!(wasi.stderr_tail(), None);
    }
}
