//! Outages (migration `0012_outages`, use cases 7.3–7.5): the power-off and power-on
//! observations of meters, each kept once (the same last gasp delivered twice is one row), and
//! the outages the MDM's outage desk groups them into, with each meter's off and on times and
//! counts. The grouping itself is `mdm::outages`; this is where its input waits and its result
//! lives.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use model::MeterSerial;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use crate::{Result, RoutedMessage, Store, StoreError, from_ms, from_ms_opt, ms, narrow, serial};

/// Whether a meter lost supply or got it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Power {
    Off,
    On,
}

impl Power {
    pub fn as_str(self) -> &'static str {
        match self {
            Power::Off => "off",
            Power::On => "on",
        }
    }

    fn parse(s: &str) -> Result<Power> {
        match s {
            "off" => Ok(Power::Off),
            "on" => Ok(Power::On),
            other => Err(StoreError::Corrupt(format!("power {other}"))),
        }
    }
}

/// A meter seen losing or regaining supply at a time (its own clock), and what told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerObservation {
    pub meter: MeterSerial,
    pub at: DateTime<Utc>,
    pub power: Power,
    /// `last_gasp`, `first_breath`, `event_101`, `event_102`.
    pub source: String,
}

/// Where in the network an outage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutageLevel {
    /// Meters under one distribution transformer.
    Dt,
    /// Meters under most of a feeder's transformers.
    Feeder,
    /// One meter alone.
    Meter,
}

impl OutageLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            OutageLevel::Dt => "dt",
            OutageLevel::Feeder => "feeder",
            OutageLevel::Meter => "meter",
        }
    }

    pub fn parse(s: &str) -> Option<OutageLevel> {
        [OutageLevel::Dt, OutageLevel::Feeder, OutageLevel::Meter]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// How far an outage is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutageStatus {
    /// No meter back yet.
    Active,
    /// Some meters back.
    Partial,
    /// Every meter back.
    Restored,
}

impl OutageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutageStatus::Active => "active",
            OutageStatus::Partial => "partial",
            OutageStatus::Restored => "restored",
        }
    }

    pub fn parse(s: &str) -> Option<OutageStatus> {
        [
            OutageStatus::Active,
            OutageStatus::Partial,
            OutageStatus::Restored,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// A meter in an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutageMeter {
    pub meter: MeterSerial,
    pub off_at: DateTime<Utc>,
    /// When it came back; `None` while off.
    pub on_at: Option<DateTime<Utc>>,
    /// Times seen going off and coming back during the outage.
    pub power_offs: u32,
    pub power_ons: u32,
}

/// An outage with its meters. `id` is 0 until stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub id: u64,
    pub level: OutageLevel,
    /// The DT or feeder id, or the meter's serial.
    pub node: String,
    /// The DT and feeder of its first meter.
    pub dt: Option<String>,
    pub feeder: Option<String>,
    pub started_at: DateTime<Utc>,
    /// When the last meter came back.
    pub restored_at: Option<DateTime<Utc>>,
    pub meters: Vec<OutageMeter>,
}

impl Outage {
    pub fn meters_on(&self) -> usize {
        self.meters.iter().filter(|m| m.on_at.is_some()).count()
    }

    pub fn status(&self) -> OutageStatus {
        match self.meters_on() {
            0 => OutageStatus::Active,
            n if n == self.meters.len() => OutageStatus::Restored,
            _ => OutageStatus::Partial,
        }
    }

    pub fn summary(&self) -> OutageSummary {
        OutageSummary {
            id: self.id,
            level: self.level,
            node: self.node.clone(),
            dt: self.dt.clone(),
            feeder: self.feeder.clone(),
            started_at: self.started_at,
            restored_at: self.restored_at,
            status: self.status(),
            meters: self.meters.len(),
            meters_on: self.meters_on(),
        }
    }
}

/// An outage without its meters (for lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutageSummary {
    pub id: u64,
    pub level: OutageLevel,
    pub node: String,
    pub dt: Option<String>,
    pub feeder: Option<String>,
    pub started_at: DateTime<Utc>,
    pub restored_at: Option<DateTime<Utc>>,
    pub status: OutageStatus,
    pub meters: usize,
    pub meters_on: usize,
}

/// A meter's transformer and feeder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub dt: Option<String>,
    pub feeder: Option<String>,
}

const SUMMARY: &str =
    "id, level, node, dt, feeder, started_at, restored_at, state, meters, meters_on";

fn summary(r: &Row<'_>) -> Result<OutageSummary> {
    let level: String = r.get(1)?;
    let state: String = r.get(7)?;
    Ok(OutageSummary {
        id: narrow(r.get(0)?, "outage id")?,
        level: OutageLevel::parse(&level)
            .ok_or_else(|| StoreError::Corrupt(format!("outage level {level}")))?,
        node: r.get(2)?,
        dt: r.get(3)?,
        feeder: r.get(4)?,
        started_at: from_ms(r.get(5)?)?,
        restored_at: from_ms_opt(r.get(6)?)?,
        status: OutageStatus::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("outage state {state}")))?,
        meters: narrow(r.get(8)?, "outage meters")?,
        meters_on: narrow(r.get(9)?, "outage meters on")?,
    })
}

/// Keeps new observations (inside an ingest batch); returns how many were new.
pub(crate) fn observe(tx: &Transaction<'_>, obs: &[PowerObservation], now_ms: i64) -> Result<u64> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO power_observation (meter, at, power, source, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (meter, at, power) DO NOTHING",
    )?;
    let mut n = 0;
    for o in obs {
        n += insert.execute(params![
            o.meter.as_str(),
            ms(o.at),
            o.power.as_str(),
            o.source,
            now_ms
        ])? as u64;
    }
    Ok(n)
}

impl Store {
    /// Observations the outage desk has not grouped yet, oldest first.
    pub fn outage_waiting(&self) -> Result<Vec<PowerObservation>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT meter, at, power, source FROM power_observation WHERE grouped = 0 \
             ORDER BY at, meter, power",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(PowerObservation {
                meter: serial(r.get(0)?)?,
                at: from_ms(r.get(1)?)?,
                power: Power::parse(&r.get::<_, String>(2)?)?,
                source: r.get(3)?,
            });
        }
        Ok(out)
    }

    /// The outages observations may still change: every one not restored, and those of
    /// `meters` restored at or after `since` (a power-fail event read after the first breath
    /// belongs to the outage it ended).
    pub fn outage_book(&self, meters: &[MeterSerial], since: DateTime<Utc>) -> Result<Vec<Outage>> {
        let mut ids: Vec<i64> = {
            let conn = self.conn();
            let mut open =
                conn.prepare_cached("SELECT id FROM outage WHERE restored_at IS NULL")?;
            let mut ids = open
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            let mut recent = conn.prepare_cached(
                "SELECT o.id FROM outage_meter m JOIN outage o ON o.id = m.outage \
                 WHERE m.meter = ?1 AND o.restored_at >= ?2",
            )?;
            for meter in meters {
                for id in recent.query_map(params![meter.as_str(), ms(since)], |r| r.get(0))? {
                    ids.push(id?);
                }
            }
            ids
        };
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(o) = self.outage(narrow(id, "outage id")?)? {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// The transformer and feeder each of `meters` hangs below at `at` (through its DCU, if
    /// any); a meter the network does not know has neither. The outage desk groups by them;
    /// the consumer record shows them.
    pub fn meter_places(
        &self,
        meters: &[MeterSerial],
        at: DateTime<Utc>,
    ) -> Result<HashMap<MeterSerial, Place>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "WITH RECURSIVE up (kind, id) AS ( \
                 SELECT 'meter', ?1 \
                 UNION \
                 SELECT n.kind, l.parent FROM network_link l JOIN up u \
                   ON l.child_kind = u.kind AND l.child = u.id \
                 JOIN network_node n ON n.id = l.parent \
                 WHERE l.valid_from <= ?2 AND (l.valid_to IS NULL OR l.valid_to > ?2)) \
             SELECT kind, id FROM up WHERE kind IN ('transformer', 'feeder')",
        )?;
        let mut out = HashMap::with_capacity(meters.len());
        for meter in meters {
            let mut place = Place::default();
            let mut rows = stmt.query(params![meter.as_str(), ms(at)])?;
            while let Some(r) = rows.next()? {
                let (kind, id): (String, String) = (r.get(0)?, r.get(1)?);
                match kind.as_str() {
                    "transformer" => place.dt = Some(id),
                    _ => place.feeder = Some(id),
                }
            }
            out.insert(meter.clone(), place);
        }
        Ok(out)
    }

    /// How many transformers hang below `feeder` at `at`.
    pub fn outage_dts_of_feeder(&self, feeder: &str, at: DateTime<Utc>) -> Result<usize> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM network_link WHERE parent = ?1 AND child_kind = 'transformer' \
             AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?2)",
            params![feeder, ms(at)],
            |r| r.get(0),
        )?;
        narrow(n, "transformer count")
    }

    /// Writes what the outage desk decided, in one transaction: `outages` new (id 0) or
    /// changed (their meters only ever added or updated), the observations it is done with
    /// marked grouped, and for each outage (by its place in `outages`, with its id) the notices
    /// `notices` makes, each routed once per key. Returns the outages' ids.
    pub fn outage_commit(
        &self,
        outages: &[Outage],
        grouped: &[PowerObservation],
        now: DateTime<Utc>,
        mut notices: impl FnMut(usize, &Outage) -> Vec<RoutedMessage>,
    ) -> Result<Vec<u64>> {
        let now_ms = ms(now);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut ids = Vec::with_capacity(outages.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO outage (level, node, dt, feeder, started_at, restored_at, state, \
                 meters, meters_on, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE outage SET level = ?2, node = ?3, started_at = ?4, restored_at = ?5, \
                 state = ?6, meters = ?7, meters_on = ?8, updated_at = ?9 WHERE id = ?1",
            )?;
            let mut meter = tx.prepare_cached(
                "INSERT INTO outage_meter (meter, outage, off_at, on_at, power_offs, power_ons) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (meter, outage) DO UPDATE SET \
                 off_at = excluded.off_at, on_at = excluded.on_at, \
                 power_offs = excluded.power_offs, power_ons = excluded.power_ons",
            )?;
            let mut route = tx.prepare_cached(
                "INSERT INTO routed_message (key, meter, destination, payload, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO NOTHING",
            )?;
            for (i, o) in outages.iter().enumerate() {
                let (status, on) = (o.status().as_str(), o.meters_on() as i64);
                let id = if o.id == 0 {
                    insert.execute(params![
                        o.level.as_str(),
                        o.node,
                        o.dt,
                        o.feeder,
                        ms(o.started_at),
                        o.restored_at.map(ms),
                        status,
                        o.meters.len() as i64,
                        on,
                        now_ms
                    ])?;
                    tx.last_insert_rowid()
                } else {
                    let id = i64::try_from(o.id)
                        .map_err(|_| StoreError::Invalid(format!("outage id {}", o.id)))?;
                    if update.execute(params![
                        id,
                        o.level.as_str(),
                        o.node,
                        ms(o.started_at),
                        o.restored_at.map(ms),
                        status,
                        o.meters.len() as i64,
                        on,
                        now_ms
                    ])? == 0
                    {
                        return Err(StoreError::NotFound(format!("outage {id}")));
                    }
                    id
                };
                for m in &o.meters {
                    meter.execute(params![
                        m.meter.as_str(),
                        id,
                        ms(m.off_at),
                        m.on_at.map(ms),
                        m.power_offs,
                        m.power_ons
                    ])?;
                }
                let stored = Outage {
                    id: narrow(id, "outage id")?,
                    ..o.clone()
                };
                for n in notices(i, &stored) {
                    route.execute(params![
                        n.key,
                        n.meter.as_str(),
                        n.destination,
                        n.payload,
                        now_ms
                    ])?;
                }
                ids.push(stored.id);
            }
            let mut done = tx.prepare_cached(
                "UPDATE power_observation SET grouped = 1 WHERE meter = ?1 AND at = ?2 \
                 AND power = ?3",
            )?;
            for g in grouped {
                done.execute(params![g.meter.as_str(), ms(g.at), g.power.as_str()])?;
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// One outage with its meters (by serial).
    pub fn outage(&self, id: u64) -> Result<Option<Outage>> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let conn = self.conn();
        let head = conn
            .query_row(
                &format!("SELECT {SUMMARY} FROM outage WHERE id = ?1"),
                params![id],
                |r| Ok(summary(r)),
            )
            .optional()?
            .transpose()?;
        let Some(head) = head else {
            return Ok(None);
        };
        let mut stmt = conn.prepare_cached(
            "SELECT meter, off_at, on_at, power_offs, power_ons FROM outage_meter \
             WHERE outage = ?1 ORDER BY meter",
        )?;
        let mut rows = stmt.query(params![id])?;
        let mut meters = Vec::new();
        while let Some(r) = rows.next()? {
            meters.push(OutageMeter {
                meter: serial(r.get(0)?)?,
                off_at: from_ms(r.get(1)?)?,
                on_at: from_ms_opt(r.get(2)?)?,
                power_offs: narrow(r.get(3)?, "power offs")?,
                power_ons: narrow(r.get(4)?, "power ons")?,
            });
        }
        Ok(Some(Outage {
            id: head.id,
            level: head.level,
            node: head.node,
            dt: head.dt,
            feeder: head.feeder,
            started_at: head.started_at,
            restored_at: head.restored_at,
            meters,
        }))
    }

    /// Outages, newest first, in `status` (all when `None`), with ids below `before` (all
    /// when `None`).
    pub fn outages(
        &self,
        status: Option<OutageStatus>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutageSummary>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {SUMMARY} FROM outage WHERE (?1 IS NULL OR state = ?1) \
             AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
        ))?;
        let before = before.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let mut rows = stmt.query(params![
            status.map(OutageStatus::as_str),
            before,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(summary(r)?);
        }
        Ok(out)
    }
}
