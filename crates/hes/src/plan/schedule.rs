//! What is due, when: the collection cadence per meter group ([`ScheduleConfig`]), each meter's
//! stable offset inside the spread window ([`jitter`]), the next run of a job ([`next_run`]) and
//! the [`Timetable`] the runtime sleeps on.
//!
//! Boundaries are stated in IST, as a utility states them: block load every 4 h from midnight
//! IST, the daily profile after midnight IST, the billing profile after 00:00 IST on the billing
//! day. Every run is the boundary, plus the job's offset, plus the meter's jitter, so a fleet
//! never connects at one instant and each meter keeps the same slot from day to day and across
//! restarts.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use model::MeterSerial;
use serde::{Deserialize, Serialize};

use super::duration;
use super::{delta, ist, scale, stable_hash};

const DAY_MS: i64 = 86_400_000;
const IST_MS: i64 = 19_800_000;

/// The collection cadence of a group of meters. Every field has a default, so a configuration
/// file names only what it changes (`spread = "2h"`). Durations read as `"4h"`, `"30m"`, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Incremental block-load collection, every this long from midnight IST (default 4 h).
    #[serde(with = "duration")]
    pub block_load_every: Duration,
    /// After each block-load boundary, so meters have closed the interval (default 5 min).
    #[serde(with = "duration")]
    pub block_load_offset: Duration,
    /// The daily profile, this long after 00:00 IST (default 30 min).
    #[serde(with = "duration")]
    pub daily_after_midnight: Duration,
    /// Day of the month of the billing date, 1..=28, at 00:00 IST (default 1).
    pub billing_day: u8,
    /// The billing profile, this long after the billing date (default 1 h).
    #[serde(with = "duration")]
    pub billing_after: Duration,
    /// The jitter window: each meter's offset inside it is a hash of its serial (default 60 min).
    #[serde(with = "duration")]
    pub spread: Duration,
    /// Event logs, every this long from midnight IST (default 24 h).
    #[serde(with = "duration")]
    pub events_every: Duration,
    /// How far back a never-collected meter's block load is read (default 24 h).
    #[serde(with = "duration")]
    pub backfill: Duration,
    /// The check for missed intervals and their re-read, every this long from midnight IST
    /// (default 24 h).
    #[serde(with = "duration")]
    pub gap_reread_every: Duration,
    /// After each gap re-read boundary (default 3 h: after the night's daily collection and its
    /// retries, in the quiet hours).
    #[serde(with = "duration")]
    pub gap_reread_offset: Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            block_load_every: Duration::from_secs(4 * 3600),
            block_load_offset: Duration::from_secs(5 * 60),
            daily_after_midnight: Duration::from_secs(30 * 60),
            billing_day: 1,
            billing_after: Duration::from_secs(3600),
            spread: Duration::from_secs(3600),
            events_every: Duration::from_secs(24 * 3600),
            backfill: Duration::from_secs(24 * 3600),
            gap_reread_every: Duration::from_secs(24 * 3600),
            gap_reread_offset: Duration::from_secs(3 * 3600),
        }
    }
}

/// A schedule that cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("billing_day must be 1..=28 (found {0})")]
    BillingDay(u8),
    #[error("{0} must be at least one second")]
    TooShort(&'static str),
    #[error("group {group:?}: {error}")]
    Group {
        group: String,
        error: Box<ScheduleError>,
    },
}

impl ScheduleConfig {
    /// Checks what serde cannot: the billing day exists in every month, and periods are not zero.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if !(1..=28).contains(&self.billing_day) {
            return Err(ScheduleError::BillingDay(self.billing_day));
        }
        for (name, every) in [
            ("block_load_every", self.block_load_every),
            ("events_every", self.events_every),
            ("gap_reread_every", self.gap_reread_every),
        ] {
            if every < Duration::from_secs(1) {
                return Err(ScheduleError::TooShort(name));
            }
        }
        Ok(())
    }
}

/// Cadences per meter group: a group's settings override the default section field by field.
///
/// In TOML:
/// ```toml
/// [schedule.default]
/// spread = "90m"
/// [schedule.groups.feeder-7]
/// block_load_every = "2h"     # everything else from [schedule.default]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConfigs")]
pub struct ScheduleConfigs {
    pub default: ScheduleConfig,
    pub groups: BTreeMap<String, ScheduleConfig>,
}

impl ScheduleConfigs {
    /// The group's cadence, or the default for a group with none of its own.
    pub fn for_group(&self, group: &str) -> &ScheduleConfig {
        self.groups.get(group).unwrap_or(&self.default)
    }

    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.default.validate()?;
        for (group, config) in &self.groups {
            config.validate().map_err(|e| ScheduleError::Group {
                group: group.clone(),
                error: Box::new(e),
            })?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfigs {
    #[serde(default)]
    default: ScheduleConfig,
    #[serde(default)]
    groups: BTreeMap<String, ScheduleOverride>,
}

/// A group's section: only the fields it names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleOverride {
    #[serde(default, with = "duration::opt")]
    block_load_every: Option<Duration>,
    #[serde(default, with = "duration::opt")]
    block_load_offset: Option<Duration>,
    #[serde(default, with = "duration::opt")]
    daily_after_midnight: Option<Duration>,
    #[serde(default)]
    billing_day: Option<u8>,
    #[serde(default, with = "duration::opt")]
    billing_after: Option<Duration>,
    #[serde(default, with = "duration::opt")]
    spread: Option<Duration>,
    #[serde(default, with = "duration::opt")]
    events_every: Option<Duration>,
    #[serde(default, with = "duration::opt")]
    backfill: Option<Duration>,
    #[serde(default, with = "duration::opt")]
    gap_reread_every: Option<Duration>,
    #[serde(default, with = "duration::opt")]
    gap_reread_offset: Option<Duration>,
}

impl ScheduleOverride {
    fn over(self, base: &ScheduleConfig) -> ScheduleConfig {
        ScheduleConfig {
            block_load_every: self.block_load_every.unwrap_or(base.block_load_every),
            block_load_offset: self.block_load_offset.unwrap_or(base.block_load_offset),
            daily_after_midnight: self
                .daily_after_midnight
                .unwrap_or(base.daily_after_midnight),
            billing_day: self.billing_day.unwrap_or(base.billing_day),
            billing_after: self.billing_after.unwrap_or(base.billing_after),
            spread: self.spread.unwrap_or(base.spread),
            events_every: self.events_every.unwrap_or(base.events_every),
            backfill: self.backfill.unwrap_or(base.backfill),
            gap_reread_every: self.gap_reread_every.unwrap_or(base.gap_reread_every),
            gap_reread_offset: self.gap_reread_offset.unwrap_or(base.gap_reread_offset),
        }
    }
}

impl TryFrom<RawConfigs> for ScheduleConfigs {
    type Error = ScheduleError;
    fn try_from(raw: RawConfigs) -> Result<Self, Self::Error> {
        let groups = raw
            .groups
            .into_iter()
            .map(|(name, o)| {
                let config = o.over(&raw.default);
                (name, config)
            })
            .collect();
        let configs = ScheduleConfigs {
            default: raw.default,
            groups,
        };
        configs.validate()?;
        Ok(configs)
    }
}

/// A kind of scheduled job. Its [`Display`](fmt::Display) name is the one the store and the
/// metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Incremental block-load (interval) profile collection.
    BlockLoad,
    /// Daily profile (midnight snapshots).
    Daily,
    /// Billing profile, after the billing date.
    Billing,
    /// The event logs.
    Events,
    /// Re-read of missed intervals.
    GapReread,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::BlockLoad,
        JobKind::Daily,
        JobKind::Billing,
        JobKind::Events,
        JobKind::GapReread,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::BlockLoad => "block_load",
            JobKind::Daily => "daily",
            JobKind::Billing => "billing",
            JobKind::Events => "events",
            JobKind::GapReread => "gap_reread",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`JobKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job kind {0:?}")]
pub struct UnknownJobKind(pub String);

impl std::str::FromStr for JobKind {
    type Err = UnknownJobKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownJobKind(s.to_owned()))
    }
}

/// A job that is due: which meter (the runtime's index into its registry), what, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub meter_index: usize,
    pub kind: JobKind,
    pub at: DateTime<Utc>,
}

/// The meter's offset inside the spread window: a stable hash of its serial (FNV-1a with a
/// SplitMix64 finish, not the standard library's per-process random hasher), uniform over
/// `[0, spread)` to the millisecond. The same serial gets the same offset in every process.
pub fn jitter(serial: &MeterSerial, spread: Duration) -> Duration {
    let window_ms = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX);
    let hash = stable_hash(&[serial.as_str().as_bytes()]);
    Duration::from_millis(scale(hash, window_ms))
}

/// The first run of `kind` for this meter strictly after `after`: the next boundary (IST) plus
/// the job's offset plus the meter's [`jitter`].
///
/// Boundaries: block load, events and gap re-read every `*_every` from each midnight IST (a
/// period longer than a day counts from 1970-01-01 00:00 IST instead); the daily profile at each
/// midnight IST; billing at 00:00 IST on `billing_day` (clamped to 1..=28) of each month.
pub fn next_run(
    kind: JobKind,
    config: &ScheduleConfig,
    serial: &MeterSerial,
    after: DateTime<Utc>,
) -> DateTime<Utc> {
    let shift = jitter(serial, config.spread);
    match kind {
        JobKind::BlockLoad => periodic(
            config.block_load_every,
            config.block_load_offset.saturating_add(shift),
            after,
        ),
        JobKind::Daily => periodic(
            Duration::from_secs(86_400),
            config.daily_after_midnight.saturating_add(shift),
            after,
        ),
        JobKind::Events => periodic(config.events_every, shift, after),
        JobKind::GapReread => periodic(
            config.gap_reread_every,
            config.gap_reread_offset.saturating_add(shift),
            after,
        ),
        JobKind::Billing => next_billing(config, config.billing_day, serial, after),
    }
}

/// The first billing-profile run strictly after `after` for a meter whose billing date is
/// `billing_day` (the meter's own, when it reports one; clamped to 1..=28).
pub fn next_billing(
    config: &ScheduleConfig,
    billing_day: u8,
    serial: &MeterSerial,
    after: DateTime<Utc>,
) -> DateTime<Utc> {
    let shift = delta(
        config
            .billing_after
            .saturating_add(jitter(serial, config.spread)),
    );
    let Some(target) = after.checked_sub_signed(shift) else {
        return after;
    };
    let day = u32::from(billing_day.clamp(1, 28));
    let local = target.with_timezone(&ist()).date_naive();
    let (y, m) = (local.year(), local.month());
    let this_month = billing_midnight(y, m, day);
    let boundary = match this_month {
        Some(b) if b > target => Some(b),
        _ if m == 12 => billing_midnight(y + 1, 1, day),
        _ => billing_midnight(y, m + 1, day),
    };
    boundary
        .and_then(|b| b.checked_add_signed(shift))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn billing_midnight(year: i32, month: u32, day: u32) -> Option<DateTime<Utc>> {
    let midnight = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(0, 0, 0)?;
    Some(midnight.and_local_timezone(ist()).single()?.to_utc())
}

/// The first `boundary + offset` strictly after `after`, boundaries every `every` from each
/// midnight IST (or from 1970-01-01 00:00 IST when `every` is longer than a day).
fn periodic(every: Duration, offset: Duration, after: DateTime<Utc>) -> DateTime<Utc> {
    let shift = delta(offset);
    let Some(target) = after.checked_sub_signed(shift) else {
        return after;
    };
    // Whole milliseconds: a boundary (integral ms) is after `target` exactly when it is after
    // `target` rounded down to the millisecond.
    let t = target.timestamp_millis();
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
    let boundary = if every_ms <= DAY_MS {
        let local = t.saturating_add(IST_MS);
        let midnight = local.div_euclid(DAY_MS) * DAY_MS;
        let into_day = local - midnight;
        let next = (into_day / every_ms + 1).saturating_mul(every_ms);
        let next = if next < DAY_MS { next } else { DAY_MS };
        midnight.saturating_add(next).saturating_sub(IST_MS)
    } else {
        let since = t.saturating_add(IST_MS);
        let n = since.div_euclid(every_ms).saturating_add(1);
        n.saturating_mul(every_ms).saturating_sub(IST_MS)
    };
    DateTime::from_timestamp_millis(boundary)
        .and_then(|b| b.checked_add_signed(shift))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Where incremental block-load collection starts (exclusive): the last collected interval end,
/// or `backfill` before `now` for a meter never collected. A last interval in the future (a
/// meter clock that ran ahead) is not trusted beyond `now`.
pub fn block_load_from(
    config: &ScheduleConfig,
    last_collected: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match last_collected {
        Some(last) => last.min(now),
        None => now
            .checked_sub_signed(delta(config.backfill))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    }
}

/// The jobs waiting to run, earliest first (ties by meter index, then kind, so runs are
/// reproducible). Re-arming after a run is the caller's: `push` the [`next_run`].
#[derive(Debug, Clone, Default)]
pub struct Timetable {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, usize, JobKind)>>,
}

impl Timetable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Timetable {
            heap: BinaryHeap::with_capacity(capacity),
        }
    }

    pub fn push(&mut self, due: Due) {
        self.heap.push(Reverse((due.at, due.meter_index, due.kind)));
    }

    /// Schedules the first run after `after` of each of `kinds` for one meter.
    pub fn arm(
        &mut self,
        meter_index: usize,
        serial: &MeterSerial,
        config: &ScheduleConfig,
        kinds: &[JobKind],
        after: DateTime<Utc>,
    ) {
        for &kind in kinds {
            self.push(Due {
                meter_index,
                kind,
                at: next_run(kind, config, serial, after),
            });
        }
    }

    /// Removes and returns every job due at or before `now`, earliest first.
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let mut due = Vec::new();
        while let Some(Reverse((at, _, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((at, meter_index, kind))) = self.heap.pop() {
                due.push(Due {
                    meter_index,
                    kind,
                    at,
                });
            }
        }
        due
    }

    /// When the earliest job is due.
    pub fn next_at(&self) -> Option<DateTime<Utc>> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

impl Extend<Due> for Timetable {
    fn extend<I: IntoIterator<Item = Due>>(&mut self, iter: I) {
        for due in iter {
            self.push(due);
        }
    }
}

impl FromIterator<Due> for Timetable {
    fn from_iter<I: IntoIterator<Item = Due>>(iter: I) -> Self {
        let mut t = Timetable::new();
        t.extend(iter);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn serial(s: &str) -> MeterSerial {
        MeterSerial::new(s).unwrap()
    }

    /// An IST wall time as UTC.
    fn ist_at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        ist().with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().to_utc()
    }

    fn no_spread() -> ScheduleConfig {
        ScheduleConfig {
            spread: Duration::ZERO,
            ..ScheduleConfig::default()
        }
    }

    #[test]
    fn block_load_boundaries_from_midnight_ist() {
        let c = no_spread();
        let m = serial("M1");
        // 03:59 IST → 04:05 IST.
        let after = ist_at(2026, 3, 10, 3, 59);
        assert_eq!(
            next_run(JobKind::BlockLoad, &c, &m, after),
            ist_at(2026, 3, 10, 4, 5)
        );
        // Exactly at a run: strictly after, so the next one.
        let at = ist_at(2026, 3, 10, 4, 5);
        assert_eq!(
            next_run(JobKind::BlockLoad, &c, &m, at),
            ist_at(2026, 3, 10, 8, 5)
        );
        // 22:00 IST → 00:05 IST the next day (crosses midnight IST, which is 18:30 UTC).
        let late = ist_at(2026, 3, 10, 22, 0);
        assert_eq!(
            next_run(JobKind::BlockLoad, &c, &m, late),
            ist_at(2026, 3, 11, 0, 5)
        );
    }

    #[test]
    fn a_period_that_does_not_divide_the_day_restarts_at_midnight() {
        let c = ScheduleConfig {
            block_load_every: Duration::from_secs(5 * 3600),
            block_load_offset: Duration::ZERO,
            ..no_spread()
        };
        let m = serial("M1");
        // 00:00, 05:00, 10:00, 15:00, 20:00, then 00:00 again (not 01:00).
        assert_eq!(
            next_run(JobKind::BlockLoad, &c, &m, ist_at(2026, 3, 10, 20, 0)),
            ist_at(2026, 3, 11, 0, 0)
        );
    }

    #[test]
    fn daily_is_after_midnight_ist() {
        let c = no_spread();
        let m = serial("M1");
        // 00:10 IST is before 00:30 IST the same day.
        assert_eq!(
            next_run(JobKind::Daily, &c, &m, ist_at(2026, 3, 10, 0, 10)),
            ist_at(2026, 3, 10, 0, 30)
        );
        // 19:00 UTC is already the next IST day (00:30 IST); the run is at 00:30 IST of it.
        let utc_evening = Utc.with_ymd_and_hms(2026, 3, 10, 18, 45, 0).unwrap();
        assert_eq!(
            next_run(JobKind::Daily, &c, &m, utc_evening),
            ist_at(2026, 3, 11, 0, 30)
        );
    }

    #[test]
    fn billing_after_the_billing_date_across_month_and_year_ends() {
        let c = no_spread();
        let m = serial("M1");
        assert_eq!(
            next_run(JobKind::Billing, &c, &m, ist_at(2026, 1, 15, 12, 0)),
            ist_at(2026, 2, 1, 1, 0)
        );
        assert_eq!(
            next_run(JobKind::Billing, &c, &m, ist_at(2026, 12, 31, 23, 0)),
            ist_at(2027, 1, 1, 1, 0)
        );
        // At 00:30 IST on the 1st the run (01:00) is still ahead.
        assert_eq!(
            next_run(JobKind::Billing, &c, &m, ist_at(2026, 3, 1, 0, 30)),
            ist_at(2026, 3, 1, 1, 0)
        );
        // A meter billing on the 28th; February has one.
        assert_eq!(
            next_billing(&c, 28, &m, ist_at(2026, 2, 27, 0, 0)),
            ist_at(2026, 2, 28, 1, 0)
        );
        assert_eq!(
            next_billing(&c, 28, &m, ist_at(2026, 2, 28, 1, 0)),
            ist_at(2026, 3, 28, 1, 0)
        );
    }

    #[test]
    fn jitter_is_stable_and_within_the_window() {
        let spread = Duration::from_secs(3600);
        let a = jitter(&serial("UP1234567"), spread);
        assert_eq!(a, jitter(&serial("UP1234567"), spread));
        assert!(a < spread);
        assert_eq!(jitter(&serial("UP1234567"), Duration::ZERO), Duration::ZERO);
        // Pinned (see `stable_hash`): the same slot in every process and release.
        assert_eq!(
            jitter(&serial("M-0001"), spread),
            Duration::from_millis(2_327_378)
        );
        // The jitter moves every run of the meter by the same amount.
        let c = ScheduleConfig::default();
        let m = serial("UP1234567");
        let run = next_run(JobKind::Daily, &c, &m, ist_at(2026, 3, 10, 0, 0));
        assert_eq!(run, ist_at(2026, 3, 10, 0, 30) + delta(a));
    }

    #[test]
    fn next_run_is_strictly_after_for_every_kind() {
        let c = ScheduleConfig::default();
        let m = serial("M-42");
        let mut t = ist_at(2026, 1, 1, 0, 0);
        for _ in 0..200 {
            for kind in JobKind::ALL {
                let next = next_run(kind, &c, &m, t);
                assert!(next > t, "{kind} at {t}");
                assert_eq!(
                    next_run(kind, &c, &m, next - TimeDelta::milliseconds(1)),
                    next
                );
            }
            t += TimeDelta::minutes(97);
        }
    }

    #[test]
    fn timetable_pops_in_time_order() {
        let t0 = ist_at(2026, 3, 10, 0, 0);
        let mut tt = Timetable::new();
        assert_eq!(tt.next_at(), None);
        for (i, mins) in [(0, 30), (1, 10), (2, 20), (3, 10)] {
            tt.push(Due {
                meter_index: i,
                kind: JobKind::Daily,
                at: t0 + TimeDelta::minutes(mins),
            });
        }
        assert_eq!(tt.next_at(), Some(t0 + TimeDelta::minutes(10)));
        assert!(tt.pop_due(t0 + TimeDelta::minutes(9)).is_empty());
        let due = tt.pop_due(t0 + TimeDelta::minutes(20));
        let order: Vec<usize> = due.iter().map(|d| d.meter_index).collect();
        assert_eq!(order, vec![1, 3, 2]);
        assert_eq!(tt.len(), 1);
        assert_eq!(tt.next_at(), Some(t0 + TimeDelta::minutes(30)));
    }

    #[test]
    fn job_kind_names() {
        for k in JobKind::ALL {
            assert_eq!(k.to_string().parse::<JobKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert_eq!(JobKind::BlockLoad.to_string(), "block_load");
        assert_eq!(JobKind::GapReread.to_string(), "gap_reread");
        assert!("blockload".parse::<JobKind>().is_err());
    }

    #[test]
    fn groups_inherit_the_default_section() {
        let json = r#"{
            "default": { "spread": "90m", "block_load_every": "2h" },
            "groups": { "rural": { "spread": "3h" }, "urban": {} }
        }"#;
        let c: ScheduleConfigs = serde_json::from_str(json).unwrap();
        assert_eq!(c.default.spread, Duration::from_secs(5400));
        let rural = c.for_group("rural");
        assert_eq!(rural.spread, Duration::from_secs(3 * 3600));
        assert_eq!(rural.block_load_every, Duration::from_secs(7200));
        assert_eq!(rural.daily_after_midnight, Duration::from_secs(1800));
        assert_eq!(c.for_group("urban"), &c.default);
        assert_eq!(c.for_group("nowhere"), &c.default);
        // Round trip.
        let back: ScheduleConfigs =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn bad_configs_are_refused() {
        let bad_day = r#"{ "groups": { "x": { "billing_day": 31 } } }"#;
        let err = serde_json::from_str::<ScheduleConfigs>(bad_day).unwrap_err();
        assert!(err.to_string().contains("billing_day"), "{err}");
        let zero = r#"{ "default": { "block_load_every": "0s" } }"#;
        assert!(serde_json::from_str::<ScheduleConfigs>(zero).is_err());
        let typo = r#"{ "default": { "sprad": "1h" } }"#;
        assert!(serde_json::from_str::<ScheduleConfigs>(typo).is_err());
        let seconds = r#"{ "default": { "spread": 600 } }"#;
        let c: ScheduleConfigs = serde_json::from_str(seconds).unwrap();
        assert_eq!(c.default.spread, Duration::from_secs(600));
    }

    #[test]
    fn incremental_collection_starts_at_the_last_interval() {
        let c = ScheduleConfig::default();
        let now = ist_at(2026, 3, 10, 4, 5);
        let last = ist_at(2026, 3, 10, 0, 0);
        assert_eq!(block_load_from(&c, Some(last), now), last);
        assert_eq!(block_load_from(&c, None, now), now - TimeDelta::hours(24));
        let ahead = now + TimeDelta::hours(2);
        assert_eq!(block_load_from(&c, Some(ahead), now), now);
    }
}
