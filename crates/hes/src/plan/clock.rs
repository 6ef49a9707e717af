//! The runtime's wall clock: UTC read off tokio's monotonic clock. Under
//! `#[tokio::test(start_paused = true)]` tokio's clock jumps to the next timer when every task is
//! idle, so a simulated day of scheduling runs in milliseconds, and UTC jumps with it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

/// Maps tokio's monotonic clock onto UTC from a fixed starting point. Cheap to copy.
///
/// The mapping never follows changes to the system clock after it was made: the runtime's
/// notion of time moves exactly as tokio's timers do, so a `sleep_until(instant_at(t))` wakes
/// when [`WallClock::now`] reaches `t`.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    start_utc: DateTime<Utc>,
    start: Instant,
}

/// How far ahead [`WallClock::instant_at`] looks at most (tokio's timer wheel handles about two
/// years; a time further out is clamped, and a sleeper simply wakes and looks again).
const FAR: Duration = Duration::from_secs(365 * 86_400);

impl WallClock {
    /// A clock reading `start_utc` now.
    pub fn new(start_utc: DateTime<Utc>) -> Self {
        WallClock {
            start_utc,
            start: Instant::now(),
        }
    }

    /// A clock that starts at the system's time of day.
    pub fn system() -> Self {
        Self::new(Utc::now())
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = TimeDelta::from_std(self.start.elapsed()).unwrap_or(TimeDelta::MAX);
        self.start_utc
            .checked_add_signed(elapsed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The tokio instant at which this clock will read `t` (for `sleep_until`); a time in the
    /// past maps to now.
    pub fn instant_at(&self, t: DateTime<Utc>) -> Instant {
        let now = Instant::now();
        let from_start = (t - self.start_utc).to_std().unwrap_or(Duration::ZERO);
        match self.start.checked_add(from_start) {
            Some(at) if at <= now => now,
            Some(at) => at.min(now + FAR),
            None => now + FAR,
        }
    }

    /// Sleeps until this clock reads `t` (at once if it already has).
    pub async fn sleep_until(&self, t: DateTime<Utc>) {
        tokio::time::sleep_until(self.instant_at(t)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap() // 2026-01-01 00:00 UTC
    }

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time() {
        let clock = WallClock::new(t0());
        assert_eq!(clock.now(), t0());
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(90));
        let copy = clock;
        assert_eq!(copy.now(), clock.now());
    }

    #[tokio::test(start_paused = true)]
    async fn sleeping_until_a_time_wakes_at_that_time() {
        let clock = WallClock::new(t0());
        let target = t0() + TimeDelta::hours(6) + TimeDelta::milliseconds(250);
        clock.sleep_until(target).await;
        assert_eq!(clock.now(), target);
    }

    #[tokio::test(start_paused = true)]
    async fn past_times_map_to_now() {
        let clock = WallClock::new(t0());
        tokio::time::advance(Duration::from_secs(3600)).await;
        let before = Instant::now();
        assert_eq!(clock.instant_at(t0() - TimeDelta::days(3)), before);
        assert_eq!(clock.instant_at(t0() + TimeDelta::minutes(30)), before);
        clock.sleep_until(t0()).await;
        assert_eq!(clock.now(), t0() + TimeDelta::hours(1));
    }

    #[tokio::test(start_paused = true)]
    async fn far_future_does_not_overflow() {
        let clock = WallClock::new(t0());
        let at = clock.instant_at(DateTime::<Utc>::MAX_UTC);
        assert!(at > Instant::now());
    }
}
