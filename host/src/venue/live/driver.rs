//! The live venues' tasks run on the engine's own thread, while the engine waits.
//!
//! A fill frame read off a private stream, the strategies' batch, and the hedge's signed
//! request written to its connection then happen on one thread, one after the other,
//! with no hand-over between threads. On the 2-vCPU machines this project measures on, a
//! wake-up of a parked thread costs tens to hundreds of microseconds, and the path had
//! three of them (stream task to engine, engine to order task, HTTP client to its
//! connection task): most of the tick-to-trade time (#12, BENCHMARKS.md).
//!
//! The price is that the sockets are serviced only while the engine waits: a strategy
//! that computes for 100 ms holds the streams' reading for as long. That is the shape of
//! every low-latency trading loop, and the sandbox's call deadline (`sandbox.call_timeout_ms`)
//! bounds a guest's turn.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::Notify;

use super::Waker;

/// The live venues' task runtime, driven by whoever waits on it (the engine's thread).
#[derive(Clone)]
pub struct Driver {
    runtime: Arc<Runtime>,
    /// Set by a venue task with something to report, or by a control message; ends the
    /// engine's wait.
    woken: Arc<Notify>,
}

impl Driver {
    /// A single-threaded runtime; `woken` is notified by whatever should end a wait.
    pub fn new(woken: Arc<Notify>) -> io::Result<Driver> {
        let runtime = Builder::new_current_thread().enable_all().thread_name("venues").build()?;
        Ok(Driver { runtime: Arc::new(runtime), woken })
    }

    pub fn handle(&self) -> &Handle {
        self.runtime.handle()
    }

    /// What a venue task calls when it has added events for the engine.
    pub fn waker(&self) -> Waker {
        let woken = self.woken.clone();
        Arc::new(move || woken.notify_one())
    }

    /// Runs the tasks until `future` completes. For the start-up's REST calls, which
    /// have their own timeouts.
    pub fn block_on<F: Future>(&self, future: F) -> Option<F::Output> {
        if self.inside() {
            return None;
        }
        Some(self.runtime.block_on(future))
    }

    /// Runs the tasks until `future` completes or `within` passes; None if it did not.
    pub fn run_until<F: Future>(&self, within: Duration, future: F) -> Option<F::Output> {
        self.block_on(async { tokio::time::timeout(within, future).await.ok() }).flatten()
    }

    /// Runs the tasks until something wakes the engine or `within` passes. The tasks
    /// that are ready, and the sockets that have something, get their turn first even if
    /// a wake is already waiting: a caller that is woken at every wait (a control message
    /// each time) must not starve them, and a hedge queued just before is written now.
    pub fn run_until_woken(&self, within: Duration) {
        self.run_until(within, async {
            tokio::task::yield_now().await;
            self.woken.notified().await;
        });
    }

    /// Runs the tasks that are ready and reads what the sockets have, without waiting:
    /// for a replay beside live venues, which never waits.
    pub fn run_ready(&self) {
        self.block_on(tokio::task::yield_now());
    }

    /// A wait from inside a task would be a runtime within the runtime: tokio panics on
    /// that, so it is refused (and logged) instead. Nothing in the runtime does it; this
    /// keeps a future mistake from taking the host down.
    fn inside(&self) -> bool {
        let inside = Handle::try_current().is_ok();
        if inside {
            tracing::error!("a wait on the live venues from inside their own tasks; skipped");
        }
        inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_when_a_task_wakes_it_and_tasks_run_only_while_waiting() {
        let woken = Arc::new(Notify::new());
        let driver = Driver::new(woken.clone()).unwrap_or_else(|e| panic!("{e}"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let wake = driver.waker();
        driver.handle().spawn(async move {
            while let Some(n) = rx.recv().await {
                if n == 2 {
                    wake();
                }
            }
        });
        let ran = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = ran.clone();
        driver.handle().spawn(async move {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        // Spawned, not yet run: nothing drives the runtime.
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0);
        driver.run_ready();
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
        let _ = tx.send(1);
        let _ = tx.send(2);
        let started = std::time::Instant::now();
        driver.run_until_woken(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10), "the task's wake did not end the wait");
        // Nothing wakes it now: the wait lasts its time.
        let started = std::time::Instant::now();
        driver.run_until_woken(Duration::from_millis(50));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_wake_already_waiting_still_gives_the_ready_tasks_their_turn() {
        let woken = Arc::new(Notify::new());
        let driver = Driver::new(woken.clone()).unwrap_or_else(|e| panic!("{e}"));
        for round in 1..=3u32 {
            // A control message before every wait: the wait ends at once, but only after
            // the task spawned meanwhile has run.
            woken.notify_one();
            let ran = Arc::new(std::sync::atomic::AtomicU32::new(0));
            let counted = ran.clone();
            driver.handle().spawn(async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
            driver.run_until_woken(Duration::from_secs(30));
            assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1, "round {round}");
        }
    }

    #[test]
    fn a_wait_from_inside_a_task_is_refused_not_a_panic() {
        let driver = Driver::new(Arc::new(Notify::new())).unwrap_or_else(|e| panic!("{e}"));
        let inner = driver.clone();
        let answer = driver.block_on(async move { inner.run_until(Duration::from_secs(1), async { 7 }) });
        assert_eq!(answer, Some(None));
        assert_eq!(driver.run_until(Duration::from_secs(1), async { 7 }), Some(7));
    }
}
