//! Tick-to-trade: from a private-stream frame read off the socket to an order it led to
//! handed, signed, to the HTTP client. Both ends are marked inside the process, on the
//! tasks that do the work, through task-locals: the stream adapters and the REST
//! adapters need not carry timestamps through their own types.
//!
//! The chain between the two marks: the stream task notes the frame's arrival on the
//! events it reports; the engine drains them and keeps the earliest arrival of the batch
//! as its trigger; every order a strategy places while handling the batch carries it to
//! the venue's order task, which observes `written - trigger` once the adapter marks the
//! request written. Orders placed on a timer or at start carry no trigger and are not
//! counted; an order in a batch with several frames counts from the earliest (the
//! conservative reading).

use std::cell::Cell;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

tokio::task_local! {
    /// When the frame being handled on a private stream was read.
    static FRAME: Cell<Option<Instant>>;
    /// When the current placement's first request was handed to the HTTP client.
    static WRITTEN: Cell<Option<Instant>>;
}

/// Runs a private stream with its frames' arrivals noted (see [`frame_read`]).
pub async fn noting_frames<F: Future>(stream: F) -> F::Output {
    FRAME.scope(Cell::new(None), stream).await
}

/// A WebSocket frame was just read; on a private stream, it is the one now handled.
pub fn frame_read() {
    let _ = FRAME.try_with(|at| at.set(Some(Instant::now())));
}

/// When the frame being handled was read, on a private stream.
pub fn frame_arrival() -> Option<Instant> {
    FRAME.try_with(Cell::get).ok().flatten()
}

/// Runs a placement, returning with its result when its request was written.
pub async fn timing_writes<F: Future>(placement: F) -> (F::Output, Option<Instant>) {
    WRITTEN.scope(Cell::new(None), async {
        let out = placement.await;
        (out, WRITTEN.with(Cell::get))
    })
    .await
}

/// The adapter hands a signed request to the HTTP client now. The first mark of a
/// placement counts: a retry after a refusal is the same order's later attempt.
pub fn request_written() {
    let _ = WRITTEN.try_with(|at| {
        if at.get().is_none() {
            at.set(Some(Instant::now()));
        }
    });
}

/// The longest tick-to-trade recorded exactly; longer ones count at this value.
const MAX_RECORDED: Duration = Duration::from_secs(60);

/// Tick-to-trade times of one venue's orders, in nanoseconds, to three significant
/// digits (the error at any quantile is under 0.1%).
#[derive(Debug)]
pub struct TickToTrade(Mutex<hdrhistogram::Histogram<u64>>);

impl Default for TickToTrade {
    fn default() -> Self {
        TickToTrade(Mutex::new(empty()))
    }
}

fn empty() -> hdrhistogram::Histogram<u64> {
    // Bounds that are valid by construction: 1 ns to 60 s, 3 significant digits.
    hdrhistogram::Histogram::new_with_bounds(1, MAX_RECORDED.as_nanos() as u64, 3).unwrap_or_else(|_| hdrhistogram::Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid")))
}

impl TickToTrade {
    pub fn observe(&self, trigger: Instant, written: Instant) {
        let nanos = written.saturating_duration_since(trigger).as_nanos().clamp(1, MAX_RECORDED.as_nanos()) as u64;
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        h.saturating_record(nanos);
    }

    pub fn snapshot(&self) -> Latencies {
        Latencies(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// A copy of the recorded times, for the metrics and the benchmark.
#[derive(Debug, Clone)]
pub struct Latencies(hdrhistogram::Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(empty())
    }
}

impl Latencies {
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The time at quantile `q` (0 to 1); zero when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.0.value_at_quantile(q.clamp(0.0, 1.0)))
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.0.max())
    }

    /// How many took longer than `limit`: the tail counted, not only placed.
    pub fn over(&self, limit: Duration) -> u64 {
        let above = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX).saturating_add(1);
        self.0.count_between(above, u64::MAX)
    }

    /// The times recorded since `earlier`, a snapshot of the same recorder: how a long
    /// run's figures move from one window to the next.
    pub fn since(&self, earlier: &Latencies) -> Latencies {
        let mut out = self.0.clone();
        // A snapshot taken later holds every count of an earlier one; were it otherwise
        // (another recorder), the whole is returned rather than a wrong difference.
        if out.subtract(&earlier.0).is_err() {
            return self.clone();
        }
        Latencies(out)
    }

    /// As a fixed-bucket histogram (bounds in seconds), for `/metrics`.
    pub fn buckets(&self, bounds: &'static [f64]) -> crate::stats::Histogram {
        let mut out = crate::stats::Histogram::new(bounds);
        for v in self.0.iter_recorded() {
            out.observe_many(v.value_iterated_to() as f64 / 1e9, v.count_at_value());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_read_on_a_noted_stream_is_the_trigger_and_only_there() {
        frame_read();
        assert_eq!(frame_arrival(), None, "outside a private stream nothing is noted");
        let before = Instant::now();
        let seen = noting_frames(async {
            assert_eq!(frame_arrival(), None);
            frame_read();
            frame_arrival()
        })
        .await;
        assert!(seen.is_some_and(|at| at >= before));
    }

    #[tokio::test]
    async fn the_first_write_of_a_placement_counts() {
        request_written();
        let ((), written) = timing_writes(async {
            request_written();
            let first = WRITTEN.with(Cell::get);
            request_written();
            assert_eq!(WRITTEN.with(Cell::get), first);
        })
        .await;
        assert!(written.is_some());
        let ((), none) = timing_writes(async {}).await;
        assert_eq!(none, None, "a placement that wrote nothing has no write time");
    }

    #[test]
    fn quantiles_are_exact_to_three_digits_and_bounded() {
        let t = TickToTrade::default();
        let start = Instant::now();
        for micros in 1..=1000u64 {
            t.observe(start, start + Duration::from_micros(micros));
        }
        // A write before its trigger (clocks are monotonic, but a bug must not panic) and one
        // past the recorded range.
        t.observe(start + Duration::from_secs(1), start);
        t.observe(start, start + Duration::from_secs(3600));
        let l = t.snapshot();
        assert_eq!(l.count(), 1002);
        let p50 = l.quantile(0.5).as_nanos() as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.002, "p50 {p50} ns");
        assert!(l.max() >= Duration::from_secs(59) && l.max() <= Duration::from_secs(61), "clamped at 60 s: {:?}", l.max());
        // 901 to 1000 µs and the one clamped at 60 s; none at or under the limit.
        assert_eq!(l.over(Duration::from_nanos(900_500)), 101);
        assert_eq!(l.over(Duration::from_secs(61)), 0);
        assert_eq!(l.over(Duration::ZERO), 1002);
        let b = l.buckets(crate::stats::CALL_BUCKETS);
        assert_eq!(b.count(), 1002);
        assert_eq!(Latencies::default().quantile(0.99), Duration::ZERO);
        // The window after the snapshot holds only what came after it.
        for _ in 0..10 {
            t.observe(start, start + Duration::from_millis(5));
        }
        let window = t.snapshot().since(&l);
        assert_eq!(window.count(), 10);
        assert!(window.quantile(0.0) >= Duration::from_micros(4990) && window.max() <= Duration::from_micros(5010), "{:?}", window.quantile(0.0));
    }
}

