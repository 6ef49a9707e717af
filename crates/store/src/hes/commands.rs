//! Commands to meters: idempotent insertion by id, lookups by id, state and batch, and state
//! transitions that write the audit row and the outbox messages in the same transaction.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::registry::require_meter;
use super::{AuditRow, CommandRecord, Inserted, OutboxMessage};
use crate::{Result, Store, StoreError, from_ms, ms, narrow, serial};

const COMMAND_COLUMNS: &str = "id, meter, batch, kind, request, state, created_at, updated_at, \
                               attempts, result, requested_by";

impl Store {
    /// Stores a new command, with a first audit row in its initial state. A command whose id
    /// is already stored is not touched: the stored record is returned.
    pub fn insert_command(&self, c: &CommandRecord) -> Result<Inserted> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if let Some(existing) = command_in(&tx, &c.id)? {
            return Ok(Inserted::Existing(existing));
        }
        require_meter(&tx, &c.meter)?;
        tx.prepare_cached(
            "INSERT INTO command (id, meter, batch, kind, request, state, created_at, updated_at, \
             attempts, result, requested_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            c.id,
            c.meter.as_str(),
            c.batch,
            c.kind,
            c.request,
            c.state,
            ms(c.created_at),
            ms(c.updated_at),
            c.attempts,
            c.result,
            c.requested_by
        ])?;
        audit_in(
            &tx,
            c.meter.as_str(),
            &c.id,
            ms(c.created_at),
            &c.state,
            &format!("requested by {}", c.requested_by),
        )?;
        tx.commit()?;
        Ok(Inserted::New)
    }

    pub fn command(&self, id: &str) -> Result<Option<CommandRecord>> {
        let conn = self.conn();
        command_in(&conn, id)
    }

    /// Commands in `state`, oldest first.
    pub fn commands_in_state(&self, state: &str) -> Result<Vec<CommandRecord>> {
        self.commands_where("state = ?1", state)
    }

    /// The commands of a group command, oldest first.
    pub fn batch_commands(&self, batch: &str) -> Result<Vec<CommandRecord>> {
        self.commands_where("batch = ?1", batch)
    }

    fn commands_where(&self, condition: &str, value: &str) -> Result<Vec<CommandRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COMMAND_COLUMNS} FROM command WHERE {condition} \
             ORDER BY created_at, meter, id"
        ))?;
        let rows = stmt.query_map([value], raw_command)?;
        rows.map(|r| command_from_raw(r?)).collect()
    }

    /// Moves a command to `to_state` with its attempt count and result (`None` clears it),
    /// writing an audit row and the given outbox messages, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn transition_command(
        &self,
        id: &str,
        to_state: &str,
        attempts: u32,
        result: Option<&str>,
        audit_detail: &str,
        at: DateTime<Utc>,
        outbox: &[OutboxMessage],
    ) -> Result<()> {
        let at = ms(at);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let meter: Option<String> = tx
            .prepare_cached("SELECT meter FROM command WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let meter = meter.ok_or_else(|| StoreError::NotFound(format!("command {id}")))?;
        tx.prepare_cached(
            "UPDATE command SET state = ?3, attempts = ?4, result = ?5, updated_at = ?6 \
             WHERE meter = ?1 AND id = ?2",
        )?
        .execute(params![meter, id, to_state, attempts, result, at])?;
        audit_in(&tx, &meter, id, at, to_state, audit_detail)?;
        super::outbox::insert_outbox(&tx, outbox, at)?;
        tx.commit()?;
        Ok(())
    }

    /// The command's audit trail, in order.
    pub fn command_audit(&self, id: &str) -> Result<Vec<AuditRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT at, state, detail FROM command_audit \
             WHERE meter = (SELECT meter FROM command WHERE id = ?1) AND command = ?1 ORDER BY n",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?;
        rows.map(|r| {
            let (at, state, detail) = r?;
            Ok(AuditRow {
                at: from_ms(at)?,
                state,
                detail,
            })
        })
        .collect()
    }
}

fn audit_in(
    conn: &Connection,
    meter: &str,
    id: &str,
    at: i64,
    state: &str,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO command_audit (meter, command, n, at, state, detail) VALUES (?1, ?2, \
         (SELECT COALESCE(MAX(n), 0) + 1 FROM command_audit WHERE meter = ?1 AND command = ?2), \
         ?3, ?4, ?5)",
    )?
    .execute(params![meter, id, at, state, detail])?;
    Ok(())
}

fn command_in(conn: &Connection, id: &str) -> Result<Option<CommandRecord>> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {COMMAND_COLUMNS} FROM command WHERE id = ?1"
        ))?
        .query_row([id], raw_command)
        .optional()?;
    raw.map(command_from_raw).transpose()
}

type RawCommand = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    String,
);

fn raw_command(r: &Row<'_>) -> rusqlite::Result<RawCommand> {
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
        r.get(9)?,
        r.get(10)?,
    ))
}

fn command_from_raw(raw: RawCommand) -> Result<CommandRecord> {
    let (id, meter, batch, kind, request, state, created, updated, attempts, result, by) = raw;
    Ok(CommandRecord {
        id,
        meter: serial(meter)?,
        batch,
        kind,
        request,
        state,
        created_at: from_ms(created)?,
        updated_at: from_ms(updated)?,
        attempts: narrow(attempts, "command attempts")?,
        result,
        requested_by: by,
    })
}
