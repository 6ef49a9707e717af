//! When a prepaid connection may be disconnected for want of balance, as configuration per
//! utility (the state orders differ): the balance must be below a threshold (which may be
//! negative, e.g. −₹300), and never inside a protected window: night hours (e.g. 18:00–08:00
//! IST), protected weekdays (Sundays), holidays, a grace period after migration to prepaid, while
//! emergency credit runs, or for small sanctioned loads. [`decide`] answers for one instant;
//! [`next_unprotected`] says when the window ends.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Utc, Weekday,
};
use model::Paise;
use serde::{Deserialize, Serialize};

/// A utility's disconnection rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisconnectionPolicy {
    /// Disconnect only when the balance is below this (e.g. `Paise(-30_000)` for −₹300).
    pub threshold: Paise,
    /// No disconnection from this IST time of day …
    pub protected_from: NaiveTime,
    /// … to this one (the window may run past midnight).
    pub protected_to: NaiveTime,
    /// No disconnection on these days (IST).
    pub protected_weekdays: Vec<Weekday>,
    pub holidays: BTreeSet<NaiveDate>,
    /// No disconnection this many days after migration to prepaid.
    pub grace_after_migration_days: u32,
    /// Loads up to this many watts are never disconnected for balance.
    pub protected_load_w: u32,
}

impl Default for DisconnectionPolicy {
    /// The common shape of the state orders: below ₹0, office hours only (08:00–18:00), not on
    /// Sundays, seven days' grace after migration, loads up to 1 kW protected.
    fn default() -> Self {
        DisconnectionPolicy {
            threshold: Paise::ZERO,
            protected_from: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default(),
            protected_to: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
            protected_weekdays: vec![Weekday::Sun],
            holidays: BTreeSet::new(),
            grace_after_migration_days: 7,
            protected_load_w: 1000,
        }
    }
}

/// What the policy needs to know of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    pub balance: Paise,
    pub sanctioned_w: u32,
    /// When it became prepaid, if by migration.
    pub migrated_at: Option<DateTime<Utc>>,
    /// Emergency credit granted and running until then.
    pub emergency_credit_until: Option<DateTime<Utc>>,
}

/// Why the supply stays on now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    BalanceAboveThreshold,
    SmallLoad,
    EmergencyCredit,
    MigrationGrace,
    Holiday,
    ProtectedWeekday,
    ProtectedHours,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Disconnect now.
    Disconnect,
    /// Not now, for this reason; from `from` on it would be allowed (if nothing else changes).
    NotBefore {
        reason: Protection,
        from: Option<DateTime<Utc>>,
    },
    /// Not for balance at all.
    Keep(Protection),
}

/// India Standard Time, +05:30.
fn ist() -> FixedOffset {
    FixedOffset::east_opt(19_800).unwrap_or(Utc.fix())
}

/// What protects every connection at `now`, if anything (the calendar and the clock).
pub fn protected_at(policy: &DisconnectionPolicy, now: DateTime<Utc>) -> Option<Protection> {
    let local = now.with_timezone(&ist());
    if policy.holidays.contains(&local.date_naive()) {
        return Some(Protection::Holiday);
    }
    if policy.protected_weekdays.contains(&local.weekday()) {
        return Some(Protection::ProtectedWeekday);
    }
    let t = local.time();
    let (from, to) = (policy.protected_from, policy.protected_to);
    let inside = if from <= to {
        from <= t && t < to
    } else {
        t >= from || t < to
    };
    inside.then_some(Protection::ProtectedHours)
}

/// The first instant at or after `now` outside every calendar and clock protection, looking at
/// most a year ahead (`None` if the policy protects the whole year).
pub fn next_unprotected(policy: &DisconnectionPolicy, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz = ist();
    let mut t = now;
    for _ in 0..(366 * 3) {
        match protected_at(policy, t) {
            None => return Some(t),
            Some(Protection::Holiday | Protection::ProtectedWeekday) => {
                // To the next local midnight.
                let next_day = t.with_timezone(&tz).date_naive().succ_opt()?;
                t = tz
                    .from_local_datetime(&next_day.and_time(NaiveTime::MIN))
                    .single()?
                    .with_timezone(&Utc);
            }
            Some(_) => {
                // To the end of the protected hours (today's or tomorrow's `protected_to`).
                let local = t.with_timezone(&tz);
                let mut end = local.date_naive().and_time(policy.protected_to);
                if end <= local.naive_local() {
                    end = local.date_naive().succ_opt()?.and_time(policy.protected_to);
                }
                t = tz.from_local_datetime(&end).single()?.with_timezone(&Utc);
            }
        }
    }
    None
}

/// Whether `connection` may be disconnected for balance at `now`.
pub fn decide(
    policy: &DisconnectionPolicy,
    connection: &Connection,
    now: DateTime<Utc>,
) -> Decision {
    if connection.balance >= policy.threshold {
        return Decision::Keep(Protection::BalanceAboveThreshold);
    }
    if connection.sanctioned_w <= policy.protected_load_w {
        return Decision::Keep(Protection::SmallLoad);
    }
    let mut not_before = now;
    let mut reason = None;
    if let Some(until) = connection.emergency_credit_until.filter(|u| *u > now) {
        not_before = not_before.max(until);
        reason = Some(Protection::EmergencyCredit);
    }
    if let Some(migrated) = connection.migrated_at {
        let grace_end = migrated + Duration::days(i64::from(policy.grace_after_migration_days));
        if grace_end > now {
            not_before = not_before.max(grace_end);
            reason = reason.or(Some(Protection::MigrationGrace));
        }
    }
    let calendar = protected_at(policy, not_before);
    match (reason.or(calendar), calendar) {
        (None, None) => Decision::Disconnect,
        (Some(reason), _) => Decision::NotBefore {
            reason,
            from: next_unprotected(policy, not_before),
        },
        (None, Some(reason)) => Decision::NotBefore {
            reason,
            from: next_unprotected(policy, not_before),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn owing() -> Connection {
        Connection {
            balance: Paise(-5_000),
            sanctioned_w: 3000,
            migrated_at: None,
            emergency_credit_until: None,
        }
    }

    #[test]
    fn office_hours_on_working_days_only() {
        let p = DisconnectionPolicy::default();
        // Friday 4 December 2026, 11:00 IST: allowed.
        assert_eq!(
            decide(&p, &owing(), at("2026-12-04T11:00:00+05:30")),
            Decision::Disconnect
        );
        // 19:00 IST: protected until Saturday 08:00 IST.
        assert_eq!(
            decide(&p, &owing(), at("2026-12-04T19:00:00+05:30")),
            Decision::NotBefore {
                reason: Protection::ProtectedHours,
                from: Some(at("2026-12-05T08:00:00+05:30")),
            }
        );
        // Sunday noon: protected until Monday 08:00.
        assert_eq!(
            decide(&p, &owing(), at("2026-12-06T12:00:00+05:30")),
            Decision::NotBefore {
                reason: Protection::ProtectedWeekday,
                from: Some(at("2026-12-07T08:00:00+05:30")),
            }
        );
    }

    #[test]
    fn balance_small_loads_holidays_grace_and_emergency_credit_protect() {
        let mut p = DisconnectionPolicy {
            threshold: Paise(-30_000),
            ..DisconnectionPolicy::default()
        };
        let now = at("2026-12-04T11:00:00+05:30");
        assert_eq!(
            decide(&p, &owing(), now),
            Decision::Keep(Protection::BalanceAboveThreshold),
            "−₹50 is above −₹300"
        );
        let deep = Connection {
            balance: Paise(-40_000),
            ..owing()
        };
        assert_eq!(decide(&p, &deep, now), Decision::Disconnect);
        let small = Connection {
            sanctioned_w: 1000,
            ..deep
        };
        assert_eq!(
            decide(&p, &small, now),
            Decision::Keep(Protection::SmallLoad)
        );
        let migrated = Connection {
            migrated_at: Some(at("2026-12-01T10:00:00+05:30")),
            ..deep
        };
        assert_eq!(
            decide(&p, &migrated, now),
            Decision::NotBefore {
                reason: Protection::MigrationGrace,
                from: Some(at("2026-12-08T10:00:00+05:30")),
            }
        );
        let emergency = Connection {
            emergency_credit_until: Some(at("2026-12-04T20:00:00+05:30")),
            ..deep
        };
        // Credit runs out in protected hours: the next allowed moment is Saturday 08:00.
        assert_eq!(
            decide(&p, &emergency, now),
            Decision::NotBefore {
                reason: Protection::EmergencyCredit,
                from: Some(at("2026-12-05T08:00:00+05:30")),
            }
        );
        p.holidays
            .insert(NaiveDate::from_ymd_opt(2026, 12, 4).unwrap());
        assert_eq!(
            decide(&p, &deep, now),
            Decision::NotBefore {
                reason: Protection::Holiday,
                from: Some(at("2026-12-05T08:00:00+05:30")),
            }
        );
    }

    #[test]
    fn a_policy_that_protects_always_never_gives_a_time() {
        let p = DisconnectionPolicy {
            protected_weekdays: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            ..DisconnectionPolicy::default()
        };
        assert_eq!(next_unprotected(&p, at("2026-12-04T11:00:00+05:30")), None);
    }

    #[test]
    fn a_warning_comes_first_and_the_cut_only_after_the_notice() {
        let p = DisconnectionPolicy::default();
        let notice = Duration::hours(24);
        let monday = at("2026-12-07T10:00:00+05:30");
        // Not warned yet: warn now, for Tuesday 10:00 (a day's notice, inside office hours).
        assert_eq!(
            next_step(&p, &owing(), monday, notice, None),
            Step::Warn {
                at: at("2026-12-08T10:00:00+05:30")
            }
        );
        // Warned an hour ago: wait until the notice has run.
        let warned = monday - Duration::hours(1);
        assert_eq!(
            next_step(&p, &owing(), monday, notice, Some(warned)),
            Step::Wait {
                until: Some(at("2026-12-08T09:00:00+05:30")),
                reason: None
            }
        );
        // Warned a day ago: cut.
        assert_eq!(
            next_step(&p, &owing(), monday, notice, Some(monday - notice)),
            Step::Disconnect
        );
        // A recharge since: keep.
        let paid = Connection {
            balance: Paise(10_000),
            ..owing()
        };
        assert_eq!(
            next_step(&p, &paid, monday, notice, Some(monday - notice)),
            Step::Keep(Protection::BalanceAboveThreshold)
        );
    }

    proptest! {
        /// A disconnection is never decided inside a protected window, nor less than the
        /// notice after the warning.
        #[test]
        fn never_cut_without_notice_or_inside_a_window(
            secs in 1_700_000_000i64..1_900_000_000,
            warned_ago_h in proptest::option::of(0i64..100),
            notice_h in 0i64..72,
        ) {
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            let p = DisconnectionPolicy::default();
            let notice = Duration::hours(notice_h);
            let warned = warned_ago_h.map(|h| now - Duration::hours(h));
            if next_step(&p, &owing(), now, notice, warned) == Step::Disconnect {
                prop_assert!(protected_at(&p, now).is_none());
                prop_assert!(warned.is_some_and(|w| now - w >= notice));
            }
        }
    }

    proptest! {
        /// No disconnection is ever decided inside a protected window, and the time given as
        /// the window's end is outside every window and not before now.
        #[test]
        fn never_inside_a_protected_window(
            secs in 1_700_000_000i64..1_900_000_000,
            from_h in 0u32..24, to_h in 0u32..24,
            sunday in any::<bool>(), saturday in any::<bool>(),
            holiday_offset in 0i64..20,
            balance in -100_000i64..100_000,
        ) {
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            let mut p = DisconnectionPolicy {
                protected_from: NaiveTime::from_hms_opt(from_h, 0, 0).unwrap(),
                protected_to: NaiveTime::from_hms_opt(to_h, 0, 0).unwrap(),
                protected_weekdays: Vec::new(),
                ..DisconnectionPolicy::default()
            };
            if sunday { p.protected_weekdays.push(Weekday::Sun); }
            if saturday { p.protected_weekdays.push(Weekday::Sat); }
            p.holidays.insert((now + Duration::days(holiday_offset)).with_timezone(&ist()).date_naive());
            let c = Connection { balance: Paise(balance), ..owing() };
            match decide(&p, &c, now) {
                Decision::Disconnect => prop_assert!(protected_at(&p, now).is_none()),
                Decision::NotBefore { from: Some(t), .. } => {
                    prop_assert!(t >= now);
                    prop_assert!(protected_at(&p, t).is_none());
                }
                _ => {}
            }
        }
    }
}

/// What to do next about one connection whose balance is short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Tell the consumer the supply will be cut from `at` unless they recharge (use case 3.2).
    Warn { at: DateTime<Utc> },
    /// Cut the supply now (the warning went out long enough ago).
    Disconnect,
    /// Nothing yet: look again at `until` (a protected window ends, or the notice runs out).
    Wait {
        until: Option<DateTime<Utc>>,
        reason: Option<Protection>,
    },
    /// Not for balance.
    Keep(Protection),
}

/// The next step for `connection` at `now`, given when the consumer was last warned of this
/// shortfall (`warned_at`): a disconnection is only ever decided outside the protected windows
/// and at least `notice` after the warning.
pub fn next_step(
    policy: &DisconnectionPolicy,
    connection: &Connection,
    now: DateTime<Utc>,
    notice: Duration,
    warned_at: Option<DateTime<Utc>>,
) -> Step {
    match decide(policy, connection, now) {
        Decision::Keep(p) => Step::Keep(p),
        Decision::NotBefore { reason, from } => match (warned_at, from) {
            (None, Some(from)) => Step::Warn {
                at: from.max(now + notice),
            },
            (_, from) => Step::Wait {
                until: from,
                reason: Some(reason),
            },
        },
        Decision::Disconnect => match warned_at {
            None => Step::Warn {
                at: next_unprotected(policy, now + notice).unwrap_or(now + notice),
            },
            Some(w) if now - w < notice => Step::Wait {
                until: next_unprotected(policy, w + notice),
                reason: None,
            },
            Some(_) => Step::Disconnect,
        },
    }
}
