//! The live venues' tasks run on the engine's own thread, while the engine waits.
//!
//! A fill frame read off a private stream, the strategies' batch, and the hedge's signed
//! request written to its connection then happen on one thread, one after the other,
//! with no hand-over between threads. On the 2-vCPU machines this project measures on, a
//! wake-up of a parked thread costs tens to hundreds of microseconds, and the path had
//! three of them (stream task to engine, engine to order task, HTTP client to its
//! connection task): most of the tick-to-trade time (#12, BENCHMARKS.md).
//!
//! Within the thread, the order matters too. A print on a live market is several frames
//! (the fill, the account update, the public trade, the depth update), ready together.
//! The engine's wait ends after the task that reported, not after every ready task, and
//! the venues' order tasks are polled by the wait itself, ahead of every other task: the
//! hedge is written before the public frames of the same print are read.
//!
//! The price is that the sockets are serviced only while the engine waits: a strategy
//! that computes for 100 ms holds the streams' reading for as long. That is the shape of
//! every low-latency trading loop, and the sandbox's call deadline (`sandbox.call_timeout_ms`)
//! bounds a guest's turn.

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::Notify;

use super::Waker;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The live venues' task runtime, driven by whoever waits on it (the engine's thread).
#[derive(Clone)]
pub struct Driver {
    /// Polled by every wait before the runtime's own tasks (the order tasks). Declared
    /// before the runtime, so they are dropped while it still runs.
    urgent: Arc<Urgent>,
    runtime: Arc<Runtime>,
    /// Set by a venue task with something to report, or by a control message; ends the
    /// engine's wait.
    woken: Arc<Notify>,
    /// Poll the sockets without sleeping while waiting (`[live] busy_poll`).
    busy_poll: bool,
    /// Woken when the runtime has nothing left to run (see [`UntilIdle`]).
    idle: Arc<Mutex<Option<std::task::Waker>>>,
}

#[derive(Default)]
struct Urgent {
    running: Mutex<FuturesUnordered<Task>>,
    /// Added while `running` is being polled (from inside a wait), taken in at the next poll.
    added: Mutex<Vec<Task>>,
    /// The waker `running` is polled with (see [`UrgentWake`]), made once.
    waker: UrgentWaker,
}

/// Wakes the wait that polls the urgent tasks, except when there is none to wake.
///
/// The engine hands an order to a venue's order task between two waits, and the task's
/// channel wakes it there, on the engine's thread. Passed on to the wait's future, that
/// wake is a system call: tokio unparks its runtime through an eventfd whenever its
/// `block_on` future is woken from outside the runtime. It was on every hedge's path
/// (`perf`: a `write` of 8 bytes between the fill's frame read and the hedge's request).
/// Nothing needs it: the next wait on that thread polls the urgent tasks before anything
/// else, and the woken task is in their ready queue already. A wake inside a wait (an
/// answer read), or from any other thread, is passed on as before.
#[derive(Default)]
struct UrgentWake {
    outer: Mutex<Option<std::task::Waker>>,
}

struct UrgentWaker(std::task::Waker, Arc<UrgentWake>);

impl Default for UrgentWaker {
    fn default() -> Self {
        let wake = Arc::new(UrgentWake::default());
        UrgentWaker(std::task::Waker::from(wake.clone()), wake)
    }
}

impl std::task::Wake for UrgentWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if WAITS.with(|w| w.get()) == Waits::Between {
            ORDERS_HANDED.with(|o| o.set(o.get().wrapping_add(1)));
            return;
        }
        if let Some(outer) = self.outer.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            outer.wake_by_ref();
        }
    }
}

/// Where a thread is with the driver's waits: one that has waited and will again (the
/// engine's) is `Between` them or `Inside` one; any other thread never waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waits {
    Never,
    Between,
    Inside,
}

thread_local! {
    static WAITS: std::cell::Cell<Waits> = const { std::cell::Cell::new(Waits::Never) };
    /// Orders the engine has handed over between two waits, on this thread.
    static ORDERS_HANDED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many orders the engine has handed over on this thread, for [`order_handed_since`].
pub fn orders_handed() -> u64 {
    ORDERS_HANDED.with(|o| o.get())
}

/// Ready with the new count once an order was handed over after `seen`; never wakes
/// anything itself, it is only looked at whenever its task is polled.
///
/// An order's request is written by its HTTP connection, a task of its own, queued behind
/// any task that was ready before it. A stream woken to read its next frame looks at this
/// first and yields once for a new order (see `ws`): a print's later frames (the account
/// update after a fill) are then read after the hedge is written, not before. Frames
/// read together are still handled together, and fills that come together are hedged
/// together.
pub fn order_handed_since(seen: u64) -> impl Future<Output = u64> {
    std::future::poll_fn(move |_| {
        let now = orders_handed();
        if now != seen {
            Poll::Ready(now)
        } else {
            Poll::Pending
        }
    })
}

/// Marks the thread inside a wait for as long as it lives, then between waits (also on a
/// panic out of the wait).
struct InsideWait;

impl InsideWait {
    fn enter() -> InsideWait {
        WAITS.with(|w| w.set(Waits::Inside));
        InsideWait
    }
}

impl Drop for InsideWait {
    fn drop(&mut self) {
        WAITS.with(|w| w.set(Waits::Between));
    }
}

impl Driver {
    /// A single-threaded runtime; `woken` is notified by whatever should end a wait.
    /// With `busy_poll`, a wait checks the sockets over and over instead of sleeping in
    /// the kernel: the thread's caches stay warm and no wake-up is paid, for a core of
    /// the machine given over to it.
    pub fn new(woken: Arc<Notify>, busy_poll: bool) -> io::Result<Driver> {
        let idle: Arc<Mutex<Option<std::task::Waker>>> = Arc::default();
        let on_idle = idle.clone();
        let runtime = Builder::new_current_thread()
            .enable_all()
            // The wait's own future is polled after each task: a fill reported ends the
            // wait before the other frames of the same print are read.
            .event_interval(1)
            // The runtime is about to sleep: nothing is left to run.
            .on_thread_park(move || {
                if let Some(waker) = on_idle.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    waker.wake();
                }
            })
            .thread_name("venues")
            // Its blocking threads (a name's resolution) are started from the engine's
            // thread, and would otherwise share its core (`[live] engine_core`).
            .on_thread_start(crate::affinity::keep_off_engine_core)
            .build()?;
        Ok(Driver { urgent: Arc::default(), runtime: Arc::new(runtime), woken, busy_poll, idle })
    }

    pub fn handle(&self) -> &Handle {
        self.runtime.handle()
    }

    /// Runs `task` ahead of the runtime's tasks: polled by every wait, before any of them,
    /// whenever it is woken. For a venue's order task, so that an order handed over at the
    /// end of a batch is signed and written first at the next wait. It only runs while the
    /// engine waits, like every venue task; a panic in it is logged and ends it alone.
    pub fn spawn_urgent(&self, what: String, task: impl Future<Output = ()> + Send + 'static) {
        self.urgent.added.lock().unwrap_or_else(|p| p.into_inner()).push(Box::pin(contained(move || what, task)));
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
        let _inside = InsideWait::enter();
        Some(self.runtime.block_on(UrgentFirst { urgent: &self.urgent, future: std::pin::pin!(future) }))
    }

    /// Runs the tasks until `future` completes or `within` passes; None if it did not.
    pub fn run_until<F: Future>(&self, within: Duration, future: F) -> Option<F::Output> {
        self.block_on(async { tokio::time::timeout(within, future).await.ok() }).flatten()
    }

    /// Runs the tasks until something wakes the engine or `within` passes, and returns
    /// right after the task that woke it. A wake already waiting when the wait begins (a
    /// control message) ends it only once nothing is left to run: a caller woken at every
    /// wait must not starve the tasks.
    ///
    /// With busy polling, the deadline is read between two rounds of the sockets rather
    /// than set as a timer: a timer is entered in the runtime's wheel when the wait begins
    /// and taken out when it ends, and both were on every fill's way to its hedge (#12).
    pub fn run_until_woken(&self, within: Duration) {
        // None only if `within` overflows the clock: then the wait ends when woken.
        let deadline = std::time::Instant::now().checked_add(within);
        self.block_on(async {
            let mut woken = std::pin::pin!(self.woken.notified());
            if woken.as_mut().enable() {
                let _ = tokio::time::timeout(within, UntilIdle::new(&self.idle)).await;
            } else if !self.busy_poll {
                let _ = tokio::time::timeout(within, woken).await;
            } else {
                // A yield puts the wait behind the sockets: the runtime checks them without
                // sleeping, runs what they woke, and polls the wait again.
                loop {
                    tokio::select! {
                        biased;
                        () = &mut woken => return,
                        () = tokio::task::yield_now() => {
                            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                                return;
                            }
                        }
                    }
                }
            }
        });
    }

    /// Runs the tasks that are ready and reads what the sockets have, without waiting:
    /// for a replay beside live venues at full speed, which never waits. Bounded, for a
    /// flood that would keep it busy.
    pub fn run_ready(&self) {
        self.run_until(RUN_READY_AT_MOST, UntilIdle::new(&self.idle));
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

/// `task`, with a panic in it ending it alone and logged as `what()`'s, as tokio does for
/// a spawned task: for futures polled inside another one rather than spawned. `what` is
/// only called on a panic (a placement is on the hot path).
pub fn contained(what: impl FnOnce() -> String, task: impl Future<Output = ()>) -> impl Future<Output = ()> {
    AssertUnwindSafe(task).catch_unwind().map(move |done| {
        if done.is_err() {
            tracing::error!("{} panicked and stopped; the host goes on", what());
        }
    })
}

/// Runs `work` on tokio's blocking pool and waits for it there, off the engine's thread.
///
/// For the bulk work of the venue tasks that no order waits on, such as reading a
/// reconciliation's 1,000-trade page (a millisecond and more): on the engine's thread it
/// would hold every fill that arrives meanwhile. A panic in `work` ends it alone and
/// comes back as an error naming `what`.
pub async fn off_thread<T: Send + 'static>(what: &'static str, work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    // A blocking thread is started by this call, on the engine's thread: off its core from
    // the outset (`[live] engine_core`), not from its first instruction on.
    crate::affinity::off_engine_core(|| tokio::task::spawn_blocking(work)).await.map_err(|e| if e.is_panic() { format!("{what} panicked") } else { format!("{what} was cancelled") })
}

/// The longest [`Driver::run_ready`] runs tasks that keep becoming ready.
const RUN_READY_AT_MOST: Duration = Duration::from_millis(5);

/// Ready once the runtime has run out of tasks: its park hook wakes it, and the runtime,
/// having something to poll, checks the sockets without sleeping and returns.
struct UntilIdle<'a> {
    slot: &'a Mutex<Option<std::task::Waker>>,
    armed: bool,
}

impl<'a> UntilIdle<'a> {
    fn new(slot: &'a Mutex<Option<std::task::Waker>>) -> Self {
        UntilIdle { slot, armed: false }
    }
}

impl Future for UntilIdle<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if self.armed && slot.is_none() {
            return Poll::Ready(());
        }
        *slot = Some(cx.waker().clone());
        drop(slot);
        self.armed = true;
        Poll::Pending
    }
}

impl Drop for UntilIdle<'_> {
    /// A wait that ended otherwise (its time, a panic) leaves no waker for the next park.
    fn drop(&mut self) {
        if self.armed {
            self.slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
    }
}

/// A wait's future, with the urgent tasks polled before it each time either is woken.
struct UrgentFirst<'a, F: Future> {
    urgent: &'a Urgent,
    future: Pin<&'a mut F>,
}

impl<F: Future> Future for UrgentFirst<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Ok(mut running) = self.urgent.running.try_lock() {
            running.extend(std::mem::take(&mut *self.urgent.added.lock().unwrap_or_else(|p| p.into_inner())));
            let UrgentWaker(waker, wake) = &self.urgent.waker;
            {
                let mut outer = wake.outer.lock().unwrap_or_else(|p| p.into_inner());
                if !outer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *outer = Some(cx.waker().clone());
                }
            }
            // Each task is polled once if it was woken; finished ones are dropped.
            let mut urgent_cx = Context::from_waker(waker);
            while let Poll::Ready(Some(())) = running.poll_next_unpin(&mut urgent_cx) {}
        }
        let out = self.future.as_mut().poll(cx);
        if out.is_pending() && !self.urgent.added.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            // Added by the future just polled: polled at once rather than at the next wake.
            cx.waker().wake_by_ref();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work sent off the thread comes back with its value, computed on another thread, and
    /// a panic in it comes back as an error naming the work, the caller going on.
    #[test]
    fn work_off_the_thread_returns_its_value_and_contains_its_panic() {
        let runtime = Builder::new_current_thread().build().unwrap_or_else(|e| panic!("{e}"));
        let caller = std::thread::current().id();
        let (value, elsewhere) = runtime.block_on(off_thread("adding", move || (2 + 2, std::thread::current().id() != caller))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value, 4);
        assert!(elsewhere, "the work ran on the caller's thread");
        let broken = runtime.block_on(off_thread("breaking", || -> u32 { panic!("deliberately") }));
        assert_eq!(broken, Err("breaking panicked".to_string()));
        assert_eq!(runtime.block_on(off_thread("after", || 1)), Ok(1), "the runtime goes on after a panic off the thread");
    }

    #[test]
    fn a_wait_ends_when_a_task_wakes_it_and_tasks_run_only_while_waiting() {
        let woken = Arc::new(Notify::new());
        let driver = Driver::new(woken.clone(), false).unwrap_or_else(|e| panic!("{e}"));
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
        let driver = Driver::new(woken.clone(), false).unwrap_or_else(|e| panic!("{e}"));
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
        let driver = Driver::new(Arc::new(Notify::new()), false).unwrap_or_else(|e| panic!("{e}"));
        let inner = driver.clone();
        let answer = driver.block_on(async move { inner.run_until(Duration::from_secs(1), async { 7 }) });
        assert_eq!(answer, Some(None));
        assert_eq!(driver.run_until(Duration::from_secs(1), async { 7 }), Some(7));
    }

    /// What each test task did, in the order they did it.
    type Log = Arc<Mutex<Vec<&'static str>>>;

    /// A task that logs `name` each time its channel gives it something.
    fn logging(log: &Log, name: &'static str) -> (tokio::sync::mpsc::UnboundedSender<()>, impl Future<Output = ()> + Send + 'static) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let log = log.clone();
        (tx, async move {
            while rx.recv().await.is_some() {
                log.lock().unwrap_or_else(|p| p.into_inner()).push(name);
            }
        })
    }

    #[test]
    fn an_urgent_task_runs_before_the_tasks_woken_ahead_of_it() {
        let driver = Driver::new(Arc::new(Notify::new()), false).unwrap_or_else(|e| panic!("{e}"));
        let log: Log = Arc::default();
        let (to_stream, stream) = logging(&log, "stream");
        let (to_orders, orders) = logging(&log, "orders");
        driver.handle().spawn(stream);
        driver.spawn_urgent("orders".into(), orders);
        driver.run_ready();
        // The stream's frame comes first, the order second: the order is written first.
        let _ = to_stream.send(());
        let _ = to_orders.send(());
        driver.run_ready();
        assert_eq!(*log.lock().unwrap_or_else(|p| p.into_inner()), ["orders", "stream"]);
    }

    /// A driver (no busy poll) with an urgent task that logs "orders", and its channel.
    fn with_orders_task() -> (Driver, Log, tokio::sync::mpsc::UnboundedSender<()>) {
        let driver = Driver::new(Arc::new(Notify::new()), false).unwrap_or_else(|e| panic!("{e}"));
        let log: Log = Arc::default();
        let (to_orders, orders) = logging(&log, "orders");
        driver.spawn_urgent("orders".into(), orders);
        (driver, log, to_orders)
    }

    /// The engine hands an order over between two waits: that wake is not passed on (it
    /// would be a system call), it is counted, and the next wait sends the order first.
    #[test]
    fn an_order_handed_over_between_waits_goes_at_the_next_wait() {
        let (driver, log, to_orders) = with_orders_task();
        driver.run_ready();
        let before = orders_handed();
        let _ = to_orders.send(());
        assert_eq!(orders_handed(), before.wrapping_add(1), "the hand-over between waits is counted");
        assert!(log.lock().unwrap_or_else(|p| p.into_inner()).is_empty());
        driver.run_ready();
        assert_eq!(*log.lock().unwrap_or_else(|p| p.into_inner()), ["orders"]);
    }

    /// A wake of an urgent task from another thread reaches a wait asleep in the kernel.
    #[test]
    fn an_urgent_task_woken_from_another_thread_runs_within_a_sleeping_wait() {
        let woken = Arc::new(Notify::new());
        let driver = Driver::new(woken, false).unwrap_or_else(|e| panic!("{e}"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let wake = driver.waker();
        driver.spawn_urgent("orders".into(), async move {
            while rx.recv().await.is_some() {
                wake();
            }
        });
        driver.run_ready();
        let before = orders_handed();
        let _tx = woken_from_another_thread(&driver, tx, "the urgent task's wake from another thread was lost");
        assert_eq!(orders_handed(), before, "a wake from another thread is not an order handed over here");
    }

    /// Sends on `tx` from another thread 20 ms into a wait of 30 s, which must end long
    /// before that. `tx` comes back: dropping it wakes its receiver too.
    fn woken_from_another_thread(driver: &Driver, tx: tokio::sync::mpsc::UnboundedSender<()>, what: &str) -> tokio::sync::mpsc::UnboundedSender<()> {
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let _ = tx.send(());
            tx
        });
        let started = std::time::Instant::now();
        driver.run_until_woken(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        sender.join().unwrap_or_else(|_| panic!("the sending thread panicked"))
    }

    #[test]
    fn a_stream_makes_way_once_for_each_order_handed_over() {
        let seen = orders_handed();
        assert_eq!(order_handed_since(seen).now_or_never(), None);
        ORDERS_HANDED.with(|o| o.set(o.get().wrapping_add(1)));
        let now = order_handed_since(seen).now_or_never();
        assert_eq!(now, Some(seen.wrapping_add(1)));
        assert_eq!(order_handed_since(seen.wrapping_add(1)).now_or_never(), None, "once per order");
    }

    #[test]
    fn a_wait_ends_after_the_task_that_woke_it_not_after_every_ready_task() {
        let woken = Arc::new(Notify::new());
        let driver = Driver::new(woken.clone(), false).unwrap_or_else(|e| panic!("{e}"));
        let log: Log = Arc::default();
        let (to_fills, fills) = logging(&log, "fill");
        let wake = driver.waker();
        driver.handle().spawn(fills.map(|()| ()));
        let (to_trades, trades) = logging(&log, "trade");
        driver.handle().spawn(trades);
        driver.run_ready();
        // A fill that wakes the engine, then a public trade, both ready at once.
        let log_fill = log.clone();
        driver.handle().spawn(async move {
            log_fill.lock().unwrap_or_else(|p| p.into_inner()).push("fill reported");
            wake();
        });
        let _ = to_trades.send(());
        driver.run_until_woken(Duration::from_secs(30));
        assert_eq!(*log.lock().unwrap_or_else(|p| p.into_inner()), ["fill reported"], "the trade waits for the next wait");
        driver.run_ready();
        assert_eq!(*log.lock().unwrap_or_else(|p| p.into_inner()), ["fill reported", "trade"]);
        drop(to_fills);
    }

    #[test]
    fn a_panicking_urgent_task_ends_alone() {
        let (driver, log, to_orders) = with_orders_task();
        let (to_bad, mut bad) = tokio::sync::mpsc::unbounded_channel::<()>();
        driver.spawn_urgent("a bad task".into(), async move {
            if bad.recv().await.is_some() {
                panic!("a bug in a task");
            }
        });
        driver.run_ready();
        let _ = to_bad.send(());
        driver.run_ready();
        let _ = to_orders.send(());
        driver.run_ready();
        assert_eq!(*log.lock().unwrap_or_else(|p| p.into_inner()), ["orders"]);
    }

    #[test]
    fn a_busy_polling_wait_ends_on_a_wake_and_otherwise_lasts_its_time() {
        let woken = Arc::new(Notify::new());
        let driver = Driver::new(woken.clone(), true).unwrap_or_else(|e| panic!("{e}"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let wake = driver.waker();
        driver.handle().spawn(async move {
            while rx.recv().await.is_some() {
                wake();
            }
        });
        let _tx = woken_from_another_thread(&driver, tx, "the wake from another thread did not end the spinning wait");
        let started = std::time::Instant::now();
        driver.run_until_woken(Duration::from_millis(50));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
