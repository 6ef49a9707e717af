//! The meter registry, DCUs, network changes, last contact, sealed keys and settings.

use chrono::{DateTime, Utc};
use model::MeterSerial;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{MeterRecord, NetworkChange, OutboxMessage, RegistryChange};
use crate::{Result, Store, StoreError, from_ms, from_ms_opt, ms, narrow, serial};

const METER_COLUMNS: &str =
    "serial, kind, host, port, transport, server_address, dcu, meter_group, system_title";

/// What to tell the rest of the system about a registry change, written to the outbox in the
/// same transaction as the change (so a crash cannot record a move and lose its notice).
pub type Announce<'a> = &'a dyn Fn(&MeterRecord, &RegistryChange) -> Vec<OutboxMessage>;

/// An [`Announce`] that tells nobody.
pub fn silently(_: &MeterRecord, _: &RegistryChange) -> Vec<OutboxMessage> {
    Vec::new()
}

const STAGED: &str = "staged";
const ACTIVE: &str = "active";

impl Store {
    /// Adds the meter or brings its record up to date. A new meter and a meter whose host,
    /// port or DCU changed are recorded as network changes. A DCU the meter names is created
    /// (with an empty host) if unknown. `announce` gives the outbox messages for the change.
    pub fn upsert_meter(
        &self,
        m: &MeterRecord,
        at: DateTime<Utc>,
        announce: Announce<'_>,
    ) -> Result<RegistryChange> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let change = upsert_meter_in(&tx, m, ms(at))?;
        super::outbox::insert_outbox(&tx, &announce(m, &change), ms(at))?;
        tx.commit()?;
        Ok(change)
    }

    /// The meter's record, if registered.
    pub fn meter(&self, serial: &MeterSerial) -> Result<Option<MeterRecord>> {
        let conn = self.conn();
        meter_in(&conn, serial)
    }

    /// Every registered meter, ordered by serial.
    pub fn meters(&self) -> Result<Vec<MeterRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {METER_COLUMNS} FROM meter ORDER BY serial"
        ))?;
        let rows = stmt.query_map([], raw_meter)?;
        rows.map(|r| meter_from_raw(r?)).collect()
    }

    /// Up to `limit` registered meters with serials after `after` (from the first when `None`),
    /// ordered by serial: one page of the registry.
    pub fn meters_after(
        &self,
        after: Option<&MeterSerial>,
        limit: u32,
    ) -> Result<Vec<MeterRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {METER_COLUMNS} FROM meter WHERE ?1 IS NULL OR serial > ?1 \
             ORDER BY serial LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after.map(MeterSerial::as_str), limit], raw_meter)?;
        rows.map(|r| meter_from_raw(r?)).collect()
    }

    pub fn meter_count(&self) -> Result<u64> {
        let conn = self.conn();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM meter", [], |r| r.get(0))?;
        narrow(n, "meter count")
    }

    /// Network changes recorded at or after `since`, oldest first.
    pub fn network_changes(&self, since: DateTime<Utc>) -> Result<Vec<NetworkChange>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT meter, at, change, detail FROM network_change WHERE at >= ?1 \
             ORDER BY at, meter, n",
        )?;
        let rows = stmt.query_map([ms(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get(2)?,
                r.get(3)?,
            ))
        })?;
        rows.map(|r| {
            let (meter, at, change, detail) = r?;
            Ok(NetworkChange {
                meter: serial(meter)?,
                at: from_ms(at)?,
                change,
                detail,
            })
        })
        .collect()
    }

    /// Adds a DCU or updates its host.
    pub fn upsert_dcu(&self, id: &str, host: &str, at: DateTime<Utc>) -> Result<()> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO dcu (id, host, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, updated_at = excluded.updated_at \
             WHERE dcu.host <> excluded.host",
        )?
        .execute(params![id, host, ms(at)])?;
        Ok(())
    }

    /// Every DCU as (id, host), ordered by id.
    pub fn dcus(&self) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT id, host FROM dcu ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The end of the meter's last successful session in which it answered.
    pub fn last_contact(&self, serial: &MeterSerial) -> Result<Option<DateTime<Utc>>> {
        let conn = self.conn();
        let v: Option<Option<i64>> = conn
            .prepare_cached("SELECT last_contact FROM meter WHERE serial = ?1")?
            .query_row([serial.as_str()], |r| r.get(0))
            .optional()?;
        from_ms_opt(v.flatten())
    }

    /// The head-end's next invocation counter for this meter as of its last recorded session.
    pub fn invocation_counter(&self, serial: &MeterSerial) -> Result<Option<u32>> {
        let conn = self.conn();
        let v: Option<Option<i64>> = conn
            .prepare_cached("SELECT invocation_counter FROM meter WHERE serial = ?1")?
            .query_row([serial.as_str()], |r| r.get(0))
            .optional()?;
        v.flatten()
            .map(|c| {
                u32::try_from(c)
                    .map_err(|_| StoreError::Corrupt(format!("invocation counter {c} of {serial}")))
            })
            .transpose()
    }

    /// Every meter's stored invocation counter, in one query (head-end start-up).
    pub fn all_invocation_counters(&self) -> Result<Vec<(MeterSerial, u32)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT serial, invocation_counter FROM meter WHERE invocation_counter IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|r| {
            let (s, c) = r?;
            Ok((serial(s)?, narrow(c, "invocation counter")?))
        })
        .collect()
    }

    /// Meters with no successful session at or after `since` (including never contacted), with
    /// their last contact, ordered by serial.
    pub fn silent_meters(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(MeterSerial, Option<DateTime<Utc>>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT serial, last_contact FROM meter \
             WHERE last_contact IS NULL OR last_contact < ?1 ORDER BY serial",
        )?;
        let rows = stmt.query_map([ms(since)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })?;
        rows.map(|r| {
            let (s, at) = r?;
            Ok((serial(s)?, from_ms_opt(at)?))
        })
        .collect()
    }

    /// Stores a new sealed key set for the meter, not yet in use. Staging the same version again
    /// with the same blob does nothing; with another blob it replaces it while still staged.
    /// The version must be newer than the active one.
    pub fn stage_keys(
        &self,
        serial: &MeterSerial,
        version: u32,
        sealed: &[u8],
        at: DateTime<Utc>,
    ) -> Result<()> {
        if version == 0 {
            return Err(StoreError::Invalid("key versions start at 1".into()));
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        require_meter(&tx, serial)?;
        let existing: Option<(String, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT state, sealed FROM meter_keys WHERE meter = ?1 AND version = ?2",
            )?
            .query_row(params![serial.as_str(), version], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        match existing {
            Some((_, blob)) if blob == sealed => {}
            Some((state, _)) if state == STAGED => {
                tx.prepare_cached(
                    "UPDATE meter_keys SET sealed = ?3, staged_at = ?4 \
                     WHERE meter = ?1 AND version = ?2",
                )?
                .execute(params![serial.as_str(), version, sealed, ms(at)])?;
            }
            Some((state, _)) => {
                return Err(StoreError::Conflict(format!(
                    "keys version {version} of meter {serial} are {state} with other contents"
                )));
            }
            None => {
                if let Some((active, _)) = active_keys_in(&tx, serial)?
                    && version <= active
                {
                    return Err(StoreError::Conflict(format!(
                        "meter {serial} already uses keys version {active}; \
                         cannot stage version {version}"
                    )));
                }
                tx.prepare_cached(
                    "INSERT INTO meter_keys (meter, version, sealed, state, staged_at) \
                     VALUES (?1, ?2, ?3, 'staged', ?4)",
                )?
                .execute(params![serial.as_str(), version, sealed, ms(at)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Makes a staged key version the active one; the previously active one is retired.
    /// Activating the active version again does nothing.
    pub fn activate_keys(
        &self,
        serial: &MeterSerial,
        version: u32,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let state: Option<String> = tx
            .prepare_cached("SELECT state FROM meter_keys WHERE meter = ?1 AND version = ?2")?
            .query_row(params![serial.as_str(), version], |r| r.get(0))
            .optional()?;
        match state.as_deref() {
            None => {
                return Err(StoreError::NotFound(format!(
                    "keys version {version} of meter {serial}"
                )));
            }
            Some(ACTIVE) => {}
            Some(STAGED) => activate_in(&tx, serial, version, ms(at))?,
            Some(other) => {
                return Err(StoreError::Conflict(format!(
                    "keys version {version} of meter {serial} are {other}; only staged keys \
                     can be activated"
                )));
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The version and sealed blob of the keys in use.
    pub fn active_keys(&self, serial: &MeterSerial) -> Result<Option<(u32, Vec<u8>)>> {
        let conn = self.conn();
        active_keys_in(&conn, serial)
    }

    /// The newest staged keys newer than the active ones (a rotation in progress).
    pub fn staged_keys(&self, serial: &MeterSerial) -> Result<Option<(u32, Vec<u8>)>> {
        let conn = self.conn();
        let row: Option<(i64, Vec<u8>)> = conn
            .prepare_cached(
                "SELECT version, sealed FROM meter_keys k WHERE meter = ?1 AND state = 'staged' \
                 AND version > COALESCE((SELECT MAX(version) FROM meter_keys a \
                                         WHERE a.meter = k.meter AND a.state = 'active'), 0) \
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row([serial.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(v, blob)| Ok((narrow(v, "key version")?, blob)))
            .transpose()
    }

    /// The active keys of every meter, ordered by serial.
    pub fn all_active_keys(&self) -> Result<Vec<(MeterSerial, u32, Vec<u8>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT meter, version, sealed FROM meter_keys WHERE state = 'active' ORDER BY meter",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?))
        })?;
        rows.map(|r| {
            let (s, v, blob) = r?;
            Ok((serial(s)?, narrow(v, "key version")?, blob))
        })
        .collect()
    }

    /// The version the meter's next keys get (one past the newest, staged or not; 1 for none):
    /// what a caller seals new keys for before [`Store::import_meter`] or
    /// [`Store::stage_keys`].
    pub fn next_key_version(&self, serial: &MeterSerial) -> Result<u32> {
        next_version_in(&self.conn(), serial)
    }

    /// Registers (or updates) a meter together with its keys, in one transaction. A meter
    /// without keys gets them as version 1, active at once. Importing the same sealed blob
    /// again creates no version; a different blob becomes a new active version (the old one is
    /// retired) and the change is at least [`RegistryChange::Updated`].
    ///
    /// The store compares sealed blobs byte for byte: the caller seals deterministically or
    /// compares plaintext itself before calling.
    pub fn import_meter(
        &self,
        m: &MeterRecord,
        sealed: &[u8],
        at: DateTime<Utc>,
        announce: Announce<'_>,
    ) -> Result<RegistryChange> {
        let at = ms(at);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let change = upsert_meter_in(&tx, m, at)?;
        let same = matches!(active_keys_in(&tx, &m.serial)?, Some((_, ref blob)) if blob == sealed);
        let keys_changed = !same;
        if keys_changed {
            let version = next_version_in(&tx, &m.serial)?;
            tx.prepare_cached(
                "INSERT INTO meter_keys (meter, version, sealed, state, staged_at) \
                 VALUES (?1, ?2, ?3, 'staged', ?4)",
            )?
            .execute(params![m.serial.as_str(), version, sealed, at])?;
            activate_in(&tx, &m.serial, version, at)?;
        }
        let change = match change {
            RegistryChange::Unchanged if keys_changed => RegistryChange::Updated,
            other => other,
        };
        super::outbox::insert_outbox(&tx, &announce(m, &change), at)?;
        tx.commit()?;
        Ok(change)
    }

    /// A setting of the installation.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached("SELECT value FROM setting WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    pub fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO setting (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute([key, value])?;
        Ok(())
    }
}

type RawMeter = (
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<String>,
    String,
    Vec<u8>,
);

fn raw_meter(r: &Row<'_>) -> rusqlite::Result<RawMeter> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn meter_from_raw(raw: RawMeter) -> Result<MeterRecord> {
    let (s, kind, host, port, transport, server_address, dcu, group, title) = raw;
    let system_title: [u8; 8] = title.as_slice().try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "system title of meter {s} is {} bytes",
            title.len()
        ))
    })?;
    Ok(MeterRecord {
        serial: serial(s)?,
        kind,
        host,
        port: narrow(port, "port")?,
        transport,
        server_address: narrow(server_address, "server address")?,
        dcu,
        group,
        system_title,
    })
}

pub(super) fn meter_in(conn: &Connection, serial: &MeterSerial) -> Result<Option<MeterRecord>> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {METER_COLUMNS} FROM meter WHERE serial = ?1"
        ))?
        .query_row([serial.as_str()], raw_meter)
        .optional()?;
    raw.map(meter_from_raw).transpose()
}

/// Fails with `NotFound` unless the meter is registered.
pub(super) fn require_meter(conn: &Connection, serial: &MeterSerial) -> Result<()> {
    let known = conn
        .prepare_cached("SELECT 1 FROM meter WHERE serial = ?1")?
        .exists([serial.as_str()])?;
    if known {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("meter {serial}")))
    }
}

fn place(host: &str, port: u16, dcu: Option<&str>) -> String {
    match dcu {
        Some(d) => format!("{host}:{port} under DCU {d}"),
        None => format!("{host}:{port}, no DCU"),
    }
}

/// One past the meter's newest key version, staged or not (1 for none).
fn next_version_in(conn: &Connection, serial: &MeterSerial) -> Result<u32> {
    let newest: Option<i64> = conn
        .prepare_cached("SELECT MAX(version) FROM meter_keys WHERE meter = ?1")?
        .query_row([serial.as_str()], |r| r.get(0))?;
    narrow(newest.unwrap_or(0).saturating_add(1), "key version")
}

fn upsert_meter_in(conn: &Connection, m: &MeterRecord, at: i64) -> Result<RegistryChange> {
    if let Some(dcu) = &m.dcu {
        conn.prepare_cached(
            "INSERT INTO dcu (id, host, created_at, updated_at) VALUES (?1, '', ?2, ?2) \
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![dcu, at])?;
    }
    let Some(old) = meter_in(conn, &m.serial)? else {
        conn.prepare_cached(
            "INSERT INTO meter (serial, kind, host, port, transport, server_address, dcu, \
             meter_group, system_title, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        )?
        .execute(params![
            m.serial.as_str(),
            m.kind,
            m.host,
            m.port,
            m.transport,
            m.server_address,
            m.dcu,
            m.group,
            &m.system_title[..],
            at
        ])?;
        let detail = place(&m.host, m.port, m.dcu.as_deref());
        record_network_change(conn, &m.serial, at, "new", &detail)?;
        return Ok(RegistryChange::New);
    };
    if old == *m {
        return Ok(RegistryChange::Unchanged);
    }
    conn.prepare_cached(
        "UPDATE meter SET kind = ?2, host = ?3, port = ?4, transport = ?5, server_address = ?6, \
         dcu = ?7, meter_group = ?8, system_title = ?9, updated_at = ?10 WHERE serial = ?1",
    )?
    .execute(params![
        m.serial.as_str(),
        m.kind,
        m.host,
        m.port,
        m.transport,
        m.server_address,
        m.dcu,
        m.group,
        &m.system_title[..],
        at
    ])?;
    if old.host != m.host || old.port != m.port || old.dcu != m.dcu {
        let detail = format!(
            "from {} to {}",
            place(&old.host, old.port, old.dcu.as_deref()),
            place(&m.host, m.port, m.dcu.as_deref())
        );
        record_network_change(conn, &m.serial, at, "moved", &detail)?;
        Ok(RegistryChange::Moved {
            from_host: old.host,
            from_port: old.port,
            from_dcu: old.dcu,
        })
    } else {
        Ok(RegistryChange::Updated)
    }
}

fn record_network_change(
    conn: &Connection,
    serial: &MeterSerial,
    at: i64,
    change: &str,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO network_change (meter, n, at, change, detail) VALUES \
         (?1, (SELECT COALESCE(MAX(n), 0) + 1 FROM network_change WHERE meter = ?1), ?2, ?3, ?4)",
    )?
    .execute(params![serial.as_str(), at, change, detail])?;
    Ok(())
}

fn active_keys_in(conn: &Connection, serial: &MeterSerial) -> Result<Option<(u32, Vec<u8>)>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT version, sealed FROM meter_keys WHERE meter = ?1 AND state = 'active'",
        )?
        .query_row([serial.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(v, blob)| Ok((narrow(v, "key version")?, blob)))
        .transpose()
}

/// Retires the active version (if any) and activates `version`.
fn activate_in(conn: &Connection, serial: &MeterSerial, version: u32, at: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE meter_keys SET state = 'retired', retired_at = ?2 \
         WHERE meter = ?1 AND state = 'active'",
    )?
    .execute(params![serial.as_str(), at])?;
    conn.prepare_cached(
        "UPDATE meter_keys SET state = 'active', activated_at = ?3 \
         WHERE meter = ?1 AND version = ?2",
    )?
    .execute(params![serial.as_str(), version, at])?;
    Ok(())
}
