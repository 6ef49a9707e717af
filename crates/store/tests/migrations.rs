//! Opening and upgrading database files: from nothing, from every older version, and refusing
//! a file from a newer program.

use chrono::{DateTime, Utc};
use model::MeterSerial;
use store::migrate::{self, MIGRATIONS};
use store::silently;
use store::{MeterRecord, RegistryChange, Store, StoreError};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn a_meter() -> MeterRecord {
    MeterRecord {
        serial: MeterSerial::new("M-0001").unwrap(),
        kind: "single-phase".into(),
        host: "10.0.0.1".into(),
        port: 4059,
        transport: "wrapper".into(),
        server_address: 1,
        dcu: None,
        group: "default".into(),
        system_title: *b"URJ\0\0\0\0\x01",
    }
}

#[test]
fn opens_an_empty_file_in_a_new_directory_with_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/nested/urja.db");
    let store = Store::open(&path).unwrap();
    assert!(path.exists());
    assert_eq!(store.schema_version().unwrap(), migrate::known_version());
    assert_eq!(migrate::known_version() as usize, MIGRATIONS.len());
    // the house pragmas are on the file (journal mode is persistent)
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // usable at once
    assert_eq!(
        store
            .upsert_meter(&a_meter(), at("2026-11-25T00:00:00Z"), &silently)
            .unwrap(),
        RegistryChange::New
    );
}

#[test]
fn reopening_keeps_data_and_applies_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urja.db");
    {
        let store = Store::open(&path).unwrap();
        store
            .upsert_meter(&a_meter(), at("2026-11-25T00:00:00Z"), &silently)
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.meter_count().unwrap(), 1);
    assert_eq!(store.schema_version().unwrap(), migrate::known_version());
}

#[test]
fn upgrades_a_file_from_every_older_version() {
    for k in 0..migrate::known_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        migrate::migrate_file_to(&path, k).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, k, "the older file is at version {k}");
        drop(conn);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), migrate::known_version());
        store
            .upsert_meter(&a_meter(), at("2026-11-25T00:00:00Z"), &silently)
            .unwrap();
        assert_eq!(store.meter_count().unwrap(), 1);
    }
}

#[test]
fn upgrading_keeps_rows_written_at_the_older_version() {
    // The last migration is applied to a file that already holds a meter written by the
    // previous one (with one migration known, the meter is written at the current version and
    // the file merely reopened).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let previous = migrate::known_version() - 1;
    migrate::migrate_file_to(&path, previous.max(1)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO meter (serial, kind, host, port, transport, server_address, dcu, \
         meter_group, system_title, created_at, updated_at) \
         VALUES ('M-0001', 'single-phase', '10.0.0.1', 4059, 'wrapper', 1, NULL, 'default', \
         x'55524A0000000001', 0, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.meter(&a_meter().serial).unwrap(), Some(a_meter()));
}

#[test]
fn refuses_a_file_from_a_newer_program() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    drop(Store::open(&path).unwrap());
    let newer = migrate::known_version() + 1;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", newer).unwrap();
    drop(conn);

    let err = Store::open(&path).unwrap_err();
    match err {
        StoreError::NewerSchema { found, known } => {
            assert_eq!(found, newer);
            assert_eq!(known, migrate::known_version());
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err_text(&path).contains("newer than this program knows"));
}

fn err_text(path: &std::path::Path) -> String {
    Store::open(path).unwrap_err().to_string()
}

#[test]
fn refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(
        &path,
        b"this is not a database file, not even close to one......",
    )
    .unwrap();
    assert!(matches!(Store::open(&path), Err(StoreError::Sqlite(_))));
}
