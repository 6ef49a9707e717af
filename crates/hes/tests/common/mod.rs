//! What the head-end's integration tests share: a head-end over a fresh store in a temporary
//! directory, a fleet's meters imported the one way meters come in (its key file), and the
//! outbox relay running.

use std::path::Path;

use bus::Bus;
use hes::keystore::{FileFormat, MasterKey, parse_key_file};
use hes::plan::WallClock;
use hes::runtime::{HeadEnd, HesConfig};
use meter_sim::FleetHandle;
use store::Store;
use tempfile::TempDir;

/// A head-end over a new store in a new temporary directory (kept alive by the caller).
pub fn head_end(config: HesConfig, master: MasterKey, bus: Bus) -> (HeadEnd, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let head_end = HeadEnd::with_store(store, master, config, bus, WallClock::system()).unwrap();
    (head_end, dir)
}

/// Writes the fleet's key file into `dir` and imports it.
pub async fn import_fleet(head_end: &HeadEnd, fleet: &FleetHandle, dir: &Path) {
    let key_file = dir.join("keys.json");
    meter_sim::keys::write_key_file(
        &key_file,
        fleet.config().seed,
        (0..fleet.meters()).map(|i| (i, fleet.endpoint(i))),
    )
    .unwrap();
    let meters = parse_key_file(&std::fs::read(&key_file).unwrap(), FileFormat::Auto).unwrap();
    head_end.import(meters).await.unwrap();
}

/// Relays the head-end's outbox to its bus until the test ends.
pub fn spawn_relay(head_end: &HeadEnd) {
    let relay = head_end.clone();
    tokio::spawn(async move { relay.relay_outbox(std::future::pending()).await });
}
