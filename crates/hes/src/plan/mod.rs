//! The head-end's planning, as pure functions over time and data: what is due when and for which
//! meter ([`schedule`]), when to try again after a failure ([`retry`]), which intervals are
//! missing and why ([`gaps`]), and the wall clock the runtime reads ([`clock`], the only part
//! that touches tokio, so tests run a simulated day on tokio's paused clock).
//!
//! Conventions: UTC everywhere; IST (+05:30) only where the business rule is stated in local
//! time (midnight, the billing date). Interval timestamps are interval **ends**.

pub mod clock;
pub mod duration;
pub mod gaps;
pub mod retry;
pub mod schedule;

pub use clock::WallClock;
pub use gaps::{Explanation, GapFinding, Range};
pub use retry::{FailureKind, GiveUpReason, Next, RetryPolicy, retryable};
pub use schedule::{Due, JobKind, ScheduleConfig, ScheduleConfigs, ScheduleError, Timetable};

use chrono::TimeDelta;
pub use dlms::datetime::ist;

/// A `std` duration as a chrono delta, saturating at chrono's maximum (about 292 million years).
pub fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// A stable 64-bit hash of byte strings: FNV-1a over the parts (each followed by a separator so
/// `("ab", "c")` and `("a", "bc")` differ), finished with the SplitMix64 mixer so that serials
/// differing only in their last character still spread over the high bits. Stable across
/// processes, platforms and releases: schedules and backoffs derived from it survive restarts.
pub(crate) fn stable_hash(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `hash` mapped uniformly onto `0..n` (the high bits, by multiplication; no modulo bias).
pub(crate) fn scale(hash: u64, n: u64) -> u64 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ist_is_five_thirty_ahead() {
        assert_eq!(ist().local_minus_utc(), 19_800);
    }

    #[test]
    fn stable_hash_is_fixed_and_separates_parts() {
        // Pinned: a change here moves every meter's schedule slot on upgrade.
        assert_eq!(stable_hash(&[b"M-0001"]), 0xa580_a076_b8c8_32c6);
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_ne!(stable_hash(&[b"M-0001"]), stable_hash(&[b"M-0002"]));
    }

    #[test]
    fn scale_stays_below_n() {
        assert_eq!(scale(u64::MAX, 10), 9);
        assert_eq!(scale(0, 10), 0);
        assert_eq!(scale(12345, 0), 0);
    }
}
