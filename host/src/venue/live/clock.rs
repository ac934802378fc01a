//! The venue's clock as we estimate it: signed requests carry the venue's time, and a
//! request outside the receive window is refused, so the offset is measured at start and
//! re-measured regularly.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn system_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

#[derive(Debug, Default)]
pub struct VenueClock {
    offset_ms: AtomicI64,
}

impl VenueClock {
    /// The venue's time now, by our estimate.
    pub fn now_ms(&self) -> i64 {
        system_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Takes a measurement: we asked at `sent_ms`, the venue said `server_ms`, the answer
    /// came at `received_ms` (all ours but the venue's); the venue read its clock, we
    /// assume, halfway.
    pub fn observe(&self, sent_ms: i64, server_ms: i64, received_ms: i64) {
        let midpoint = sent_ms + (received_ms - sent_ms) / 2;
        self.offset_ms.store(server_ms - midpoint, Ordering::Relaxed);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_taken_at_the_midpoint() {
        let clock = VenueClock::default();
        clock.observe(1_000, 5_100, 1_200);
        assert_eq!(clock.offset_ms(), 4_000);
    }
}
