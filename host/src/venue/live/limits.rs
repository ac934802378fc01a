//! Client-side rate limiting: requests queue here rather than exceed a venue's limits.
//!
//! Each venue has windows of request weight and of order count. We count what we send
//! and take the venue's own count from its response headers when it is higher (other
//! processes may share the key or the IP). A 429 pauses everything for `Retry-After`;
//! a 418 stops the venue until the ban ends, and is reported as an alert.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Weight,
    Orders,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub counted: Counted,
    pub span: Duration,
    pub max: u32,
}

struct WindowState {
    window: Window,
    used: VecDeque<(Instant, u32)>,
    /// The sum of `used`, kept as it changes: an account with a raised limit has tens of
    /// thousands of entries in a window, too many to add up on every request.
    total: u64,
}

impl WindowState {
    fn new(window: Window) -> Self {
        WindowState { window, used: VecDeque::new(), total: 0 }
    }

    fn prune(&mut self, now: Instant) {
        while self.used.front().is_some_and(|(at, _)| now.duration_since(*at) >= self.window.span) {
            if let Some((_, n)) = self.used.pop_front() {
                self.total = self.total.saturating_sub(u64::from(n));
            }
        }
    }

    fn push(&mut self, at: Instant, amount: u32) {
        self.used.push_back((at, amount));
        self.total = self.total.saturating_add(u64::from(amount));
    }

    fn total(&self) -> u32 {
        u32::try_from(self.total).unwrap_or(u32::MAX)
    }

    /// How long until `amount` more fits.
    fn wait_for(&mut self, now: Instant, amount: u32) -> Duration {
        self.prune(now);
        let (amount, max) = (u64::from(amount), u64::from(self.window.max));
        let mut total = self.total;
        if total + amount <= max {
            return Duration::ZERO;
        }
        for (at, n) in &self.used {
            total = total.saturating_sub(u64::from(*n));
            if total + amount <= max {
                return self.window.span.saturating_sub(now.duration_since(*at));
            }
        }
        self.window.span
    }
}

struct State {
    windows: Vec<WindowState>,
    paused_until: Option<Instant>,
    banned_until: Option<Instant>,
    /// Set when the runtime stops: placements waiting for room are not sent when it comes.
    placing_closed: bool,
}

pub struct RateLimiter {
    state: Mutex<State>,
}

/// Why a request may not go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The venue has banned us; nothing may be sent until this has passed.
    Banned(Duration),
    /// Placements are closed: the runtime is stopping. An order that waited its turn
    /// through a stop would reach the market at a price decided before it, for a
    /// strategy no longer there to manage it.
    Closed,
}

impl From<Refused> for crate::venue::live::protocol::RestError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Banned(left) => crate::venue::live::protocol::RestError::Banned(left),
            Refused::Closed => crate::venue::live::protocol::RestError::NotSent("placements are closed: the runtime is stopping".into()),
        }
    }
}

impl RateLimiter {
    pub fn new(windows: &[Window]) -> Self {
        RateLimiter {
            state: Mutex::new(State {
                windows: windows.iter().map(|w| WindowState::new(*w)).collect(),
                paused_until: None,
                banned_until: None,
                placing_closed: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a request of `weight` placing `orders` orders fits every window, then
    /// counts it. Fails at once while the venue has banned us, and for placements once
    /// they are closed (checked again after every wait).
    pub async fn acquire(&self, weight: u32, orders: u32) -> Result<(), Refused> {
        loop {
            let wait = {
                let mut state = self.lock();
                let now = Instant::now();
                if let Some(until) = state.banned_until.filter(|u| *u > now) {
                    return Err(Refused::Banned(until - now));
                }
                if orders > 0 && state.placing_closed {
                    return Err(Refused::Closed);
                }
                let mut wait = state.paused_until.map(|u| u.saturating_duration_since(now)).unwrap_or_default();
                for w in &mut state.windows {
                    let amount = match w.window.counted {
                        Counted::Weight => weight,
                        Counted::Orders => orders,
                    };
                    if amount > 0 {
                        wait = wait.max(w.wait_for(now, amount));
                    }
                }
                if wait.is_zero() {
                    for w in &mut state.windows {
                        let amount = match w.window.counted {
                            Counted::Weight => weight,
                            Counted::Orders => orders,
                        };
                        if amount > 0 {
                            w.push(now, amount);
                        }
                    }
                    return Ok(());
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Each window with what is used of it now, for the operator's metrics.
    pub fn usage(&self) -> Vec<(Window, u32)> {
        let mut state = self.lock();
        let now = Instant::now();
        state
            .windows
            .iter_mut()
            .map(|w| {
                w.prune(now);
                (w.window, w.total())
            })
            .collect()
    }

    /// The venue's own count for a window (from a response header): when it is above
    /// ours, the difference is booked now, so we slow down to the venue's view.
    pub fn observe(&self, counted: Counted, span: Duration, venue_count: u32) {
        let mut state = self.lock();
        let now = Instant::now();
        for w in &mut state.windows {
            if w.window.counted == counted && w.window.span == span {
                w.prune(now);
                let ours = w.total();
                if venue_count > ours {
                    w.push(now, venue_count - ours);
                }
            }
        }
    }

    /// A 429: nothing is sent before `retry_after` has passed.
    pub fn pause(&self, retry_after: Duration) {
        let mut state = self.lock();
        let until = Instant::now() + retry_after;
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
    }

    /// A 418: the venue is closed to us until the ban ends.
    pub fn ban(&self, duration: Duration) {
        let mut state = self.lock();
        state.banned_until = Some(Instant::now() + duration);
    }

    /// No placement goes from now on, including those waiting for room.
    pub fn close_placing(&self) {
        self.lock().placing_closed = true;
    }

    pub fn banned(&self) -> Option<Duration> {
        let state = self.lock();
        state.banned_until.map(|u| u.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(max: u32, ms: u64) -> Window {
        Window { counted: Counted::Orders, span: Duration::from_millis(ms), max }
    }

    #[test]
    fn a_full_window_waits_for_its_oldest_entry_to_leave() {
        let mut w = WindowState::new(window(2, 1000));
        let t0 = Instant::now();
        assert_eq!(w.wait_for(t0, 1), Duration::ZERO);
        w.push(t0, 1);
        w.push(t0 + Duration::from_millis(400), 1);
        assert_eq!(w.wait_for(t0 + Duration::from_millis(500), 1), Duration::from_millis(500));
        assert_eq!(w.wait_for(t0 + Duration::from_millis(500), 2), Duration::from_millis(900));
        assert_eq!(w.wait_for(t0 + Duration::from_millis(1000), 1), Duration::ZERO);
    }

    #[test]
    fn the_venues_higher_count_is_taken() {
        let limiter = RateLimiter::new(&[window(10, 10_000)]);
        limiter.observe(Counted::Orders, Duration::from_millis(10_000), 9);
        let mut state = limiter.lock();
        assert_eq!(state.windows[0].total(), 9);
        assert!(state.windows[0].wait_for(Instant::now(), 2) > Duration::ZERO);
    }

    #[test]
    fn a_ban_refuses_and_reports_its_length() {
        let limiter = RateLimiter::new(&[window(10, 1000)]);
        limiter.ban(Duration::from_secs(120));
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap_or_else(|e| panic!("{e}"));
        let refused = rt.block_on(limiter.acquire(1, 1));
        assert!(matches!(refused, Err(Refused::Banned(d)) if d > Duration::from_secs(100)));
        assert!(limiter.banned().is_some());
    }

    /// A placement waiting for room when placements close is refused when it wakes,
    /// not sent; requests that place nothing (cancels, queries) still go.
    #[tokio::test(start_paused = true)]
    async fn closing_refuses_placements_even_those_already_waiting() {
        let limiter = std::sync::Arc::new(RateLimiter::new(&[window(1, 10_000)]));
        assert_eq!(limiter.acquire(1, 1).await, Ok(()));
        let waiting = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(1, 1).await }
        });
        tokio::task::yield_now().await;
        limiter.close_placing();
        assert_eq!(waiting.await.ok(), Some(Err(Refused::Closed)));
        assert_eq!(limiter.acquire(1, 0).await, Ok(()), "a cancel still goes");
        assert_eq!(limiter.acquire(1, 1).await, Err(Refused::Closed));
    }
}
