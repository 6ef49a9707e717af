//! `urja up --simulate N` (the README's first command) runs the system end to end on the real
//! head-end: the binary starts N simulated meters, imports their key file into a data directory,
//! and collects every job from every meter over HLS + AES-GCM; a second run on the same data
//! directory continues from where the first stopped.

use std::path::Path;
use std::process::{Command, Output};

fn up(data: &Path, base_address: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_urja"))
        .args(["up", "--simulate", "20", "--once", "--data"])
        .arg(data)
        .args([
            "--base-address",
            base_address,
            "--port",
            "0",
            "--no-outages",
            "--backfill-days",
            "2",
        ])
        .env_remove("URJA_MASTER_KEY")
        .env_remove("URJA_DATA")
        .output()
        .expect("urja runs")
}

/// The number in `… N <label>` on the line starting with `prefix`.
fn number_before(stdout: &str, prefix: &str, label: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}:\n{stdout}"));
    let before = line
        .split(label)
        .next()
        .unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    before
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {label:?} in {line:?}"))
}

#[test]
fn up_collects_from_every_simulated_meter_and_resumes_where_it_stopped() {
    let data = tempfile::tempdir().unwrap();
    let out = up(data.path(), "127.46.0.1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "urja up failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("20 simulated meter(s)"), "{stdout}");
    assert!(stdout.contains("new 20, moved 0"), "{stdout}");
    assert!(
        stdout.contains("20/20 meters read"),
        "every meter must be read:\n{stdout}\n{stderr}"
    );
    let first = number_before(&stdout, "round ", "block-load intervals");
    // Two days of 15-minute intervals from each of 20 meters (the backfill window).
    assert!(first >= 20 * 190, "{first} intervals:\n{stdout}");
    // Importing alone relays 20 network changes: the block load must be among the kinds.
    assert!(
        stdout.contains("block_load 20"),
        "each meter's block load is published:\n{stdout}"
    );
    // The MDM stored every interval the head-end collected, in the same file.
    assert_eq!(
        number_before(&stdout, "MDM: ", "intervals"),
        first,
        "the MDM stores what was collected:\n{stdout}"
    );
    assert!(stdout.contains("0 dead letters"), "{stdout}");
    assert!(stdout.contains("Head-end failure report"), "{stdout}");
    assert!(data.path().join("master.key").exists());
    assert!(data.path().join("urja.sqlite").exists());

    // Same meters, same data directory: only intervals closed since the first run are read
    // (at most one per meter, if a quarter hour turned in between); nothing is read twice.
    let out = up(data.path(), "127.46.0.1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "second urja up failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("new 0"), "the meters are known:\n{stdout}");
    assert!(stdout.contains("20/20 meters read"), "{stdout}\n{stderr}");
    let second = number_before(&stdout, "round ", "block-load intervals");
    assert!(
        second <= 20,
        "the second run re-read {second} intervals:\n{stdout}"
    );
}

#[test]
fn up_without_meters_says_what_to_do() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args(["up", "--once", "--data"])
        .arg(data.path())
        .env_remove("URJA_MASTER_KEY")
        .output()
        .expect("urja runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--simulate"), "{stderr}");
    assert!(stderr.contains("urja import"), "{stderr}");
}
