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

/// ISO 8601 UTC with milliseconds (`2020-12-08T09:08:57.715Z`): OKX's timestamps, and the
/// times of reports.
pub fn iso_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
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
