//! Scheduled collection (use cases 1.1–1.2, 2.2–2.4, 6.1–6.2): one session per meter reads what is
//! due (block load incremental from the last collected interval, daily profile, billing profile,
//! event logs, re-reads of missed intervals), detects the intervals the meter did not give,
//! explains those that fall in a power failure, and hands everything over as messages in the
//! session's commit. [`Collector::run`] drives it from the timetable, with retries.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use is15959::catalogue::obis;
use model::{EventCategory, HesMessage, IntervalReading, MeterSerial, MissedReason};
use store::{Gap, GapChange, GapState};
use tokio::task::JoinSet;

use crate::operations;
use crate::plan::gaps::{self, Explanation, Range};
use crate::plan::schedule::{self, Due, JobKind, Timetable};
use crate::plan::{Next, delta};
use crate::runtime::{HeadEnd, JobContext, JobDone, JobError, StoreReader};
use crate::session::SessionError;

/// Store names of the collected profiles (cursor and gap keys).
pub const BLOCK_LOAD: &str = "block_load";
pub const DAILY: &str = "daily";
pub const BILLING: &str = "billing";

fn events_profile(log: EventCategory) -> String {
    format!("events:{}", log.log_index())
}

/// The event logs read by the events job: all of them.
const EVENT_LOGS: [EventCategory; 7] = EventCategory::ALL;

/// The periodic jobs: what a meter's first (catch-up) session reads, and what the timetable
/// keeps re-arming. Gap re-reads are scheduled only when a gap is found.
pub const PERIODIC: [JobKind; 4] = [
    JobKind::BlockLoad,
    JobKind::Daily,
    JobKind::Billing,
    JobKind::Events,
];

/// What one collection session brought.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub intervals: usize,
    pub days: usize,
    pub billing_rows: usize,
    pub events: usize,
    /// Missing intervals found and left open for re-reading.
    pub gaps_opened: usize,
    /// Missing intervals explained by a power failure.
    pub intervals_explained: usize,
    /// Intervals recovered by re-reading a gap.
    pub intervals_recovered: usize,
    /// Gaps re-read without result and left open for another try.
    pub gaps_left: usize,
}

/// Where collection of each profile stands for one meter, read from the store before a session.
#[derive(Debug, Clone, Default)]
struct Cursors {
    at: HashMap<String, DateTime<Utc>>,
}

/// Runs one collection session on `serial` for `kinds`. The session's name in the records is the
/// kinds joined with `+` (e.g. `block_load+daily`).
pub async fn collect(
    hes: &HeadEnd,
    serial: &MeterSerial,
    kinds: &[JobKind],
    attempt: u32,
) -> Result<JobDone<Collected>, JobError> {
    let Some(entry) = hes.meter(serial) else {
        return Err(JobError::UnknownMeter(serial.clone()));
    };
    let group = entry.record().group;
    let schedule = hes.config().schedule.for_group(&group).clone();
    let gap_attempts = hes.config().gap_attempts;
    let job = kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join("+");
    let kinds = kinds.to_vec();
    let role = hes.config().roles.reading.into();
    let store = hes.store_reader().clone();
    hes.run_session(serial, &job, role, attempt, move |ctx| {
        Box::pin(async move {
            // Read under the meter's session lock, so an alarm follow-up that moved an
            // event-log cursor a moment ago is seen.
            let want_gaps = kinds.contains(&JobKind::GapReread);
            let (cursors, open_gaps) = load_state(&store, ctx.serial, want_gaps).await?;
            let mut got = Collected::default();
            let now = ctx.now;
            let start = |profile: &str| {
                schedule::block_load_from(&schedule, cursors.at.get(profile).copied(), now)
            };
            // The layouts this session will need (on first contact, all of them) in one go.
            let mut profiles = Vec::new();
            for kind in &kinds {
                match kind {
                    JobKind::BlockLoad => profiles.push(obis::BLOCK_LOAD_PROFILE),
                    JobKind::GapReread if !open_gaps.is_empty() => {
                        profiles.push(obis::BLOCK_LOAD_PROFILE)
                    }
                    JobKind::GapReread => {}
                    JobKind::Daily => profiles.push(obis::DAILY_LOAD_PROFILE),
                    JobKind::Billing => profiles.push(obis::BILLING_PROFILE),
                    JobKind::Events => profiles.extend(
                        EVENT_LOGS
                            .iter()
                            .map(|log| obis::event_log(log.log_index())),
                    ),
                }
            }
            ctx.prefetch_layouts(&profiles).await?;
            for kind in &kinds {
                match kind {
                    JobKind::BlockLoad => {
                        let since = start(BLOCK_LOAD);
                        block_load(ctx, since, &mut got).await?
                    }
                    JobKind::Daily => daily(ctx, start(DAILY), &mut got).await?,
                    JobKind::Billing => billing(ctx, start(BILLING), &mut got).await?,
                    JobKind::Events => {
                        for log in EVENT_LOGS {
                            let since = start(&events_profile(log));
                            event_log(ctx, log, since, &mut got).await?;
                        }
                    }
                    JobKind::GapReread => {
                        reread(ctx, &open_gaps, gap_attempts, &mut got).await?;
                    }
                }
            }
            Ok(got)
        })
    })
    .await
}

/// The meter's collection cursors and, when asked, its open block-load gaps.
async fn load_state(
    store: &StoreReader,
    serial: &MeterSerial,
    want_gaps: bool,
) -> Result<(Cursors, Vec<Gap>), SessionError> {
    let serial = serial.clone();
    let loaded = store
        .read(move |store| {
            let cursors = Cursors {
                at: store.cursors(&serial)?.into_iter().collect(),
            };
            let gaps = if want_gaps {
                store.open_gaps(&serial, BLOCK_LOAD)?
            } else {
                Vec::new()
            };
            Ok::<_, store::StoreError>((cursors, gaps))
        })
        .await;
    match loaded {
        Ok(Ok(state)) => Ok(state),
        Ok(Err(e)) => Err(store_unavailable(e)),
        Err(e) => Err(store_unavailable(e)),
    }
}

/// A store failure inside a session ends the session like a meter failure would, and is
/// recorded with the attempt.
fn store_unavailable(e: impl std::fmt::Display) -> SessionError {
    SessionError::Unexpected(format!("the head-end's store: {e}"))
}

/// The collection cursor of one event log (where the last read of it ended), read off the
/// async workers.
pub(crate) async fn event_log_cursor(
    store: &store::Store,
    serial: &MeterSerial,
    log: EventCategory,
) -> Result<Option<DateTime<Utc>>, SessionError> {
    let (store, serial) = (store.clone(), serial.clone());
    match tokio::task::spawn_blocking(move || store.cursor(&serial, &events_profile(log))).await {
        Ok(Ok(at)) => Ok(at),
        Ok(Err(e)) => Err(store_unavailable(e)),
        Err(e) => Err(store_unavailable(e)),
    }
}

/// The block-load capture period, read from the profile (attribute 4) once and kept.
async fn capture_period(ctx: &mut JobContext<'_>) -> Result<TimeDelta, SessionError> {
    if let Some(p) = ctx.live.block_load_period {
        return Ok(p);
    }
    let value = ctx
        .session
        .get(
            dlms::apdu::AttributeDescriptor::new(7, obis::BLOCK_LOAD_PROFILE, 4),
            None,
        )
        .await?;
    let secs = value
        .as_i64()
        .filter(|s| (60..=86_400).contains(s))
        .ok_or_else(|| SessionError::Unexpected(format!("block-load capture period {value:?}")))?;
    let period = TimeDelta::seconds(secs);
    ctx.live.block_load_period = Some(period);
    Ok(period)
}

fn align_down(t: DateTime<Utc>, period: TimeDelta) -> DateTime<Utc> {
    let p = period.num_seconds().max(1);
    let s = t.timestamp().div_euclid(p) * p;
    DateTime::from_timestamp(s, 0).unwrap_or(t)
}

/// The last interval end the meter has closed, as far as the head-end can tell: by the earlier
/// of the two clocks, so a meter running slow is not asked for an interval it has not closed.
fn last_closed(ctx: &JobContext<'_>, period: TimeDelta) -> DateTime<Utc> {
    let meter_now = ctx.now + ctx.clock_drift.min(TimeDelta::zero());
    align_down(meter_now, period)
}

/// Incremental block load: everything after `since` up to the last closed interval. Intervals
/// the meter does not return become gaps: explained by its power-failure log, or left open for
/// re-reading.
async fn block_load(
    ctx: &mut JobContext<'_>,
    since: DateTime<Utc>,
    got: &mut Collected,
) -> Result<(), SessionError> {
    let period = capture_period(ctx).await?;
    let since = align_down(since, period);
    let until = last_closed(ctx, period);
    if until <= since {
        return Ok(());
    }
    let layout = ctx.layout(obis::BLOCK_LOAD_PROFILE).await?;
    let rows = operations::read_block_load(
        ctx.session,
        &layout,
        ctx.serial,
        since + TimeDelta::seconds(1),
        until,
    )
    .await?;
    let rows = within(rows, since, until);
    let ends: Vec<DateTime<Utc>> = rows.iter().map(|r| r.interval_end).collect();
    let finding = gaps::missing_ranges(since, until, to_std(period), &ends);
    if !finding.missing.is_empty() {
        let explained = explain_gaps(ctx, &finding.missing, period).await?;
        for (range, explanation) in explained {
            match explanation {
                Explanation::PowerOff { from, to } => {
                    got.intervals_explained += intervals_in(&range, period);
                    record_explained(ctx, &range, from, to);
                }
                Explanation::Unexplained => {
                    got.gaps_opened += intervals_in(&range, period);
                    ctx.output.gaps.push(GapChange::Open {
                        profile: BLOCK_LOAD.into(),
                        from: range.from,
                        to: range.to,
                    });
                }
            }
        }
    }
    got.intervals += rows.len();
    if !rows.is_empty() {
        ctx.output.publish(HesMessage::BlockLoad {
            meter: ctx.serial.clone(),
            intervals: rows,
        });
    }
    ctx.output.cursors.push((BLOCK_LOAD.into(), until));
    Ok(())
}

/// Rows with `from < end <= to`, one per interval end, in order.
fn within(
    mut rows: Vec<IntervalReading>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<IntervalReading> {
    keep_new(&mut rows, from, to, |r| r.interval_end);
    rows
}

/// Keeps the rows stamped in `since < t <= until`, one per stamp, in time order; returns the
/// last stamp kept.
fn keep_new<T>(
    rows: &mut Vec<T>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    stamp: impl Fn(&T) -> DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    rows.retain(|r| stamp(r) > since && stamp(r) <= until);
    rows.sort_by_key(&stamp);
    rows.dedup_by_key(|r| stamp(r));
    rows.last().map(stamp)
}

fn to_std(d: TimeDelta) -> Duration {
    d.to_std().unwrap_or(Duration::from_secs(900))
}

fn intervals_in(range: &Range, period: TimeDelta) -> usize {
    range.intervals(to_std(period)) as usize
}

fn record_explained(
    ctx: &mut JobContext<'_>,
    range: &Range,
    off_from: DateTime<Utc>,
    off_to: DateTime<Utc>,
) {
    ctx.output.gaps.push(GapChange::Closed {
        profile: BLOCK_LOAD.into(),
        from: range.from,
        to: range.to,
        state: GapState::Explained,
        reason: format!("power off {off_from} – {off_to}"),
    });
    ctx.output.publish(HesMessage::MissedData {
        meter: ctx.serial.clone(),
        profile: BLOCK_LOAD.into(),
        from: range.from,
        to: range.to,
        reason: MissedReason::PowerOff { off_from, off_to },
    });
}

/// Reads the power-failure log around the missing ranges and splits them into explained and
/// unexplained parts.
async fn explain_gaps(
    ctx: &mut JobContext<'_>,
    missing: &[Range],
    period: TimeDelta,
) -> Result<Vec<(Range, Explanation)>, SessionError> {
    let (Some(first), Some(last)) = (missing.first(), missing.last()) else {
        return Ok(Vec::new());
    };
    // A failure that began before the first missing interval still explains it.
    let from = first.from - period - TimeDelta::days(1);
    let to = last.to.max(ctx.now);
    let layout = ctx
        .layout(is15959::catalogue::obis::event_log(
            EventCategory::Power.log_index(),
        ))
        .await?;
    let events = operations::read_event_log(
        ctx.session,
        &layout,
        ctx.serial,
        EventCategory::Power,
        from,
        to,
    )
    .await?;
    let spans = gaps::power_off_spans(&events, ctx.now);
    Ok(gaps::explain(missing, &spans, to_std(period)))
}

/// Re-reads open gaps with selective access by range: what the meter now returns is published
/// (it was never published before, being missing), what is still missing is explained, tried
/// again later, or given up after `max_attempts` and reported.
async fn reread(
    ctx: &mut JobContext<'_>,
    open: &[Gap],
    max_attempts: u32,
    got: &mut Collected,
) -> Result<(), SessionError> {
    if open.is_empty() {
        return Ok(());
    }
    let period = capture_period(ctx).await?;
    let layout = ctx.layout(obis::BLOCK_LOAD_PROFILE).await?;
    for gap in open {
        let before = gap.from - period;
        let rows =
            operations::read_block_load(ctx.session, &layout, ctx.serial, gap.from, gap.to).await?;
        let rows = within(rows, before, gap.to);
        let ends: Vec<DateTime<Utc>> = rows.iter().map(|r| r.interval_end).collect();
        let still = gaps::missing_ranges(before, gap.to, to_std(period), &ends).missing;
        got.intervals_recovered += rows.len();
        got.intervals += rows.len();
        if !rows.is_empty() {
            ctx.output.publish(HesMessage::BlockLoad {
                meter: ctx.serial.clone(),
                intervals: rows,
            });
        }
        if still.is_empty() {
            ctx.output.gaps.push(GapChange::Resolve {
                id: gap.id,
                state: GapState::Filled,
                reason: None,
            });
            continue;
        }
        let explained = explain_gaps(ctx, &still, period).await?;
        let unexplained: Vec<Range> = explained
            .iter()
            .filter(|(_, e)| matches!(e, Explanation::Unexplained))
            .map(|(r, _)| *r)
            .collect();
        let partial = still.len() != 1 || still[0].from != gap.from || still[0].to != gap.to;
        if partial || unexplained.len() != still.len() {
            // Part came back or part is explained: close this gap, record the parts.
            ctx.output.gaps.push(GapChange::Resolve {
                id: gap.id,
                state: GapState::Filled,
                reason: Some("re-read: part recovered or explained".into()),
            });
            for (range, explanation) in explained {
                match explanation {
                    Explanation::PowerOff { from, to } => {
                        got.intervals_explained += intervals_in(&range, period);
                        record_explained(ctx, &range, from, to);
                    }
                    Explanation::Unexplained => {
                        got.gaps_left += 1;
                        ctx.output.gaps.push(GapChange::Open {
                            profile: BLOCK_LOAD.into(),
                            from: range.from,
                            to: range.to,
                        })
                    }
                }
            }
        } else if gap.attempts + 1 >= max_attempts {
            ctx.output.gaps.push(GapChange::Resolve {
                id: gap.id,
                state: GapState::Unrecoverable,
                reason: Some(format!("not returned after {} re-reads", gap.attempts + 1)),
            });
            ctx.output.publish(HesMessage::MissedData {
                meter: ctx.serial.clone(),
                profile: BLOCK_LOAD.into(),
                from: gap.from,
                to: gap.to,
                reason: MissedReason::GaveUp {
                    attempts: gap.attempts + 1,
                },
            });
        } else {
            got.gaps_left += 1;
            ctx.output.gaps.push(GapChange::Attempted { id: gap.id });
        }
    }
    Ok(())
}

/// Daily profile rows captured after `since`.
async fn daily(
    ctx: &mut JobContext<'_>,
    since: DateTime<Utc>,
    got: &mut Collected,
) -> Result<(), SessionError> {
    let layout = ctx.layout(obis::DAILY_LOAD_PROFILE).await?;
    let mut days = operations::read_daily_profile(
        ctx.session,
        &layout,
        ctx.serial,
        since + TimeDelta::seconds(1),
        ctx.now,
    )
    .await?;
    let last = keep_new(&mut days, since, ctx.now, |d| d.captured_at);
    got.days += days.len();
    if let Some(last) = last {
        ctx.output.cursors.push((DAILY.into(), last));
        ctx.output.publish(HesMessage::DailyProfile {
            meter: ctx.serial.clone(),
            days,
        });
    }
    Ok(())
}

/// Billing profile rows (one per billing date) after `since`.
async fn billing(
    ctx: &mut JobContext<'_>,
    since: DateTime<Utc>,
    got: &mut Collected,
) -> Result<(), SessionError> {
    let layout = ctx.layout(obis::BILLING_PROFILE).await?;
    let mut readings = operations::read_billing_profile(
        ctx.session,
        &layout,
        ctx.serial,
        since + TimeDelta::seconds(1),
        ctx.now,
    )
    .await?;
    let last = keep_new(&mut readings, since, ctx.now, |r| r.billing_date);
    got.billing_rows += readings.len();
    if let Some(last) = last {
        ctx.output.cursors.push((BILLING.into(), last));
        ctx.output.publish(HesMessage::BillingProfile {
            meter: ctx.serial.clone(),
            readings,
        });
    }
    Ok(())
}

/// Entries of one event log after `since`, published, with the log's cursor moved to the last.
pub(crate) async fn event_log(
    ctx: &mut JobContext<'_>,
    log: EventCategory,
    since: DateTime<Utc>,
    got: &mut Collected,
) -> Result<(), SessionError> {
    let layout = ctx.layout(obis::event_log(log.log_index())).await?;
    let mut events = operations::read_event_log(
        ctx.session,
        &layout,
        ctx.serial,
        log,
        since + TimeDelta::seconds(1),
        ctx.now,
    )
    .await?;
    events.retain(|e| e.at > since);
    events.sort_by_key(|e| e.at);
    got.events += events.len();
    if let Some(last) = events.last() {
        ctx.output.cursors.push((events_profile(log), last.at));
        ctx.output.publish(HesMessage::Events {
            meter: ctx.serial.clone(),
            events,
        });
    }
    Ok(())
}

/// Where a (meter, job) stands in its retry cycle.
#[derive(Debug, Clone, Copy)]
struct Cycle {
    attempt: u32,
    first_at: DateTime<Utc>,
}

/// What the collector did, for reports and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CollectorStats {
    pub sessions: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub retries: usize,
    pub given_up: usize,
    pub collected: Collected,
}

impl std::ops::AddAssign for Collected {
    fn add_assign(&mut self, o: Collected) {
        self.intervals += o.intervals;
        self.days += o.days;
        self.billing_rows += o.billing_rows;
        self.events += o.events;
        self.gaps_opened += o.gaps_opened;
        self.intervals_explained += o.intervals_explained;
        self.intervals_recovered += o.intervals_recovered;
        self.gaps_left += o.gaps_left;
    }
}

/// Drives collection from the timetable: each meter's jobs at their times (with its jitter), the
/// jobs due together on one meter in one session, failures retried by the retry policy, gaps
/// re-read after a detection.
#[derive(Debug, Clone)]
pub struct Collector {
    hes: HeadEnd,
}

/// Every periodic job of meter `i`, due at `now` (catching up from the cursor or the backfill).
fn schedule_first_round(table: &mut Timetable, i: usize, now: DateTime<Utc>) {
    for kind in PERIODIC {
        table.push(Due {
            meter_index: i,
            kind,
            at: now,
        });
    }
}

type Finished = (
    usize,
    Vec<JobKind>,
    u32,
    Result<JobDone<Collected>, JobError>,
);

impl Collector {
    pub fn new(hes: HeadEnd) -> Self {
        Collector { hes }
    }

    /// Runs until `shutdown`. Every meter's jobs start at once on the first run (catching up
    /// from the cursor, or the backfill for a new meter); after that they follow the schedule.
    /// `on_session` sees every session's result (progress bars, tests).
    pub async fn run(
        &self,
        shutdown: impl Future<Output = ()>,
        mut on_session: impl FnMut(&MeterSerial, &[JobKind], &Result<JobDone<Collected>, JobError>),
    ) -> CollectorStats {
        let hes = &self.hes;
        let clock = *hes.clock();
        let mut meters = hes.meters();
        let now = clock.now();
        let mut table = Timetable::with_capacity(meters.len() * 4);
        for i in 0..meters.len() {
            schedule_first_round(&mut table, i, now);
        }
        let mut refresh =
            tokio::time::interval(hes.config().registry_refresh.max(Duration::from_millis(10)));
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cycles: HashMap<(usize, JobKind), Cycle> = HashMap::new();
        let mut running: JoinSet<Finished> = JoinSet::new();
        let mut busy: HashMap<usize, Vec<JobKind>> = HashMap::new();
        let mut stats = CollectorStats::default();
        tokio::pin!(shutdown);
        loop {
            let next = table.next_at().map(|t| clock.instant_at(t));
            tokio::select! {
                _ = &mut shutdown => break,
                _ = refresh.tick() => {
                    // Meters another process imported: collected from now on, first round first.
                    match hes.take_new_meters() {
                        Ok(added) => {
                            let now = clock.now();
                            for entry in added {
                                tracing::info!(meter = %entry.serial, "new meter taken into service");
                                schedule_first_round(&mut table, meters.len(), now);
                                meters.push(entry);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "looking for newly imported meters failed"),
                    }
                }
                Some(done) = running.join_next(), if !running.is_empty() => {
                    let Ok((i, kinds, attempt, result)) = done else { continue };
                    busy.remove(&i);
                    let serial = &meters[i].serial;
                    on_session(serial, &kinds, &result);
                    stats.sessions += 1;
                    let group = meters[i].record().group;
                    let config = hes.config().schedule.for_group(&group);
                    let now = clock.now();
                    match &result {
                        Ok(done) => {
                            stats.succeeded += 1;
                            stats.collected += done.value;
                            for kind in &kinds {
                                cycles.remove(&(i, *kind));
                                if *kind != JobKind::GapReread {
                                    table.push(Due {
                                        meter_index: i,
                                        kind: *kind,
                                        at: schedule::next_run(*kind, config, serial, now),
                                    });
                                }
                            }
                            // New gaps are re-read soon (the meter may just have been
                            // slow to store them); gaps a re-read did not fill wait for the
                            // next scheduled re-read.
                            let reread_at = if done.value.gaps_opened > 0 {
                                let backoff = hes.config().retry.backoff_after(1, serial);
                                Some(now + delta(backoff))
                            } else if done.value.gaps_left > 0 {
                                Some(schedule::next_run(JobKind::GapReread, config, serial, now))
                            } else {
                                None
                            };
                            if let Some(at) = reread_at {
                                table.push(Due {
                                    meter_index: i,
                                    kind: JobKind::GapReread,
                                    at,
                                });
                            }
                        }
                        Err(e) => {
                            stats.failed += 1;
                            let kind = e.failure_kind();
                            for k in &kinds {
                                let cycle = cycles.entry((i, *k)).or_insert(Cycle {
                                    attempt,
                                    first_at: now,
                                });
                                let next = hes.config().retry.next_after(
                                    kind,
                                    attempt,
                                    cycle.first_at,
                                    now,
                                    serial,
                                );
                                match next {
                                    Next::RetryAt(t) => {
                                        cycle.attempt = attempt + 1;
                                        table.push(Due { meter_index: i, kind: *k, at: t });
                                    }
                                    Next::GiveUp(_) => {
                                        cycles.remove(&(i, *k));
                                        stats.given_up += 1;
                                        if *k != JobKind::GapReread {
                                            table.push(Due {
                                                meter_index: i,
                                                kind: *k,
                                                at: schedule::next_run(*k, config, serial, now),
                                            });
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                _ = sleep_until_opt(next) => {
                    let now = clock.now();
                    let mut by_meter: BTreeMap<usize, Vec<JobKind>> = BTreeMap::new();
                    for due in table.pop_due(now) {
                        by_meter.entry(due.meter_index).or_default().push(due.kind);
                    }
                    for (i, mut kinds) in by_meter {
                        if let Some(running_kinds) = busy.get(&i) {
                            // The meter is in a session: try these again a little later.
                            for k in kinds.into_iter().filter(|k| !running_kinds.contains(k)) {
                                table.push(Due { meter_index: i, kind: k, at: now + TimeDelta::seconds(30) });
                            }
                            continue;
                        }
                        kinds.sort();
                        kinds.dedup();
                        let attempt = kinds
                            .iter()
                            .map(|k| cycles.get(&(i, *k)).map_or(1, |c| c.attempt))
                            .max()
                            .unwrap_or(1);
                        if attempt > 1 {
                            stats.retries += 1;
                        }
                        busy.insert(i, kinds.clone());
                        let hes = hes.clone();
                        let serial = meters[i].serial.clone();
                        running.spawn(async move {
                            let result = collect(&hes, &serial, &kinds, attempt).await;
                            (i, kinds, attempt, result)
                        });
                    }
                }
            }
        }
        running.abort_all();
        stats
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Collects `kinds` from every meter once, `concurrency` sessions at a time (the head-end's gate
/// applies too), with no retries: the benchmark's and `--once`'s round.
pub async fn collect_all(
    hes: &HeadEnd,
    kinds: &[JobKind],
    mut on_session: impl FnMut(&MeterSerial, &Result<JobDone<Collected>, JobError>),
) -> CollectorStats {
    use futures::StreamExt;
    let meters = hes.meters();
    let parallel = hes.config().concurrency.max(1);
    let kinds: Arc<[JobKind]> = kinds.into();
    let mut results = futures::stream::iter(meters.into_iter().map(|m| {
        let hes = hes.clone();
        let kinds = kinds.clone();
        async move {
            let r = collect(&hes, &m.serial, &kinds, 1).await;
            (m, r)
        }
    }))
    .buffer_unordered(parallel);
    let mut stats = CollectorStats::default();
    while let Some((m, r)) = results.next().await {
        on_session(&m.serial, &r);
        stats.sessions += 1;
        match &r {
            Ok(done) => {
                stats.succeeded += 1;
                stats.collected += done.value;
            }
            Err(_) => stats.failed += 1,
        }
    }
    stats
}
