//! Schema migrations: an ordered list of SQL scripts embedded in the binary. The file's version
//! (`PRAGMA user_version`) is the number of scripts applied; each script runs in its own
//! transaction together with the version bump, so a crash mid-upgrade leaves the file at the
//! previous version.

use std::path::Path;

use rusqlite::Connection;

use crate::{Result, StoreError};

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The script's file name without extension, e.g. `0001_hes`.
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this program knows, in order. Append only: never edit a released script.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_hes",
        sql: include_str!("../migrations/0001_hes.sql"),
    },
    Migration {
        name: "0002_mdm",
        sql: include_str!("../migrations/0002_mdm.sql"),
    },
    Migration {
        name: "0003_auth",
        sql: include_str!("../migrations/0003_auth.sql"),
    },
    Migration {
        name: "0004_prepaid",
        sql: include_str!("../migrations/0004_prepaid.sql"),
    },
    Migration {
        name: "0005_charge_run",
        sql: include_str!("../migrations/0005_charge_run.sql"),
    },
    Migration {
        name: "0006_notify",
        sql: include_str!("../migrations/0006_notify.sql"),
    },
    Migration {
        name: "0007_prepaid_ops",
        sql: include_str!("../migrations/0007_prepaid_ops.sql"),
    },
    Migration {
        name: "0008_billing",
        sql: include_str!("../migrations/0008_billing.sql"),
    },
    Migration {
        name: "0009_bill_payments",
        sql: include_str!("../migrations/0009_bill_payments.sql"),
    },
    Migration {
        name: "0010_tamper",
        sql: include_str!("../migrations/0010_tamper.sql"),
    },
    Migration {
        name: "0011_billing_transfers",
        sql: include_str!("../migrations/0011_billing_transfers.sql"),
    },
    Migration {
        name: "0012_outages",
        sql: include_str!("../migrations/0012_outages.sql"),
    },
    Migration {
        name: "0013_portal",
        sql: include_str!("../migrations/0013_portal.sql"),
    },
    Migration {
        name: "0014_care",
        sql: include_str!("../migrations/0014_care.sql"),
    },
    Migration {
        name: "0015_field",
        sql: include_str!("../migrations/0015_field.sql"),
    },
];

/// The schema version this program writes.
pub fn known_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// The version recorded in the file.
pub fn version(conn: &Connection) -> Result<u32> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("schema version {v}")))
}

/// Applies the first `target` migrations that the file lacks. Refuses a file already newer
/// than this program knows.
pub(crate) fn migrate(conn: &mut Connection, target: usize) -> Result<()> {
    let found = version(conn)?;
    let known = known_version();
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    let start = usize::try_from(found).unwrap_or(usize::MAX);
    for (index, m) in MIGRATIONS.iter().enumerate().take(target).skip(start) {
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql)?;
        let reached = i64::try_from(index + 1)
            .map_err(|_| StoreError::Invalid(format!("migration {} is out of range", m.name)))?;
        tx.pragma_update(None, "user_version", reached)?;
        tx.commit()?;
    }
    Ok(())
}

/// Creates (or upgrades) the file at `path` to exactly the first `version` migrations, without
/// opening a [`crate::Store`]. For upgrade tests: write an older file, then `Store::open` it.
pub fn migrate_file_to(path: &Path, version: u32) -> Result<()> {
    let target = usize::try_from(version).unwrap_or(usize::MAX);
    if target > MIGRATIONS.len() {
        return Err(StoreError::Invalid(format!(
            "schema version {version} is beyond the known {}",
            known_version()
        )));
    }
    let mut conn = crate::open_connection(path)?;
    migrate(&mut conn, target)
}
