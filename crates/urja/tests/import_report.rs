//! `urja import` takes meters and keys in from a key file (here the simulator's, JSON and CSV)
//! and says what changed; `urja report` prints the failure report of a data directory.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};

use meter_sim::Transport;
use meter_sim::keys::{Endpoint, write_key_file};

fn urja(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_urja"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("URJA_MASTER_KEY")
        .output()
        .expect("urja runs")
}

fn key_file(path: &Path, meters: u32, port: u16) {
    let endpoints = (0..meters).map(|i| {
        (
            i,
            Endpoint {
                address: Ipv4Addr::new(127, 47, 0, 1 + i as u8),
                port,
                transport: Transport::Wrapper,
            },
        )
    });
    write_key_file(path, 7, endpoints).unwrap();
}

fn stdout(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "urja failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn import_counts_new_moved_and_unchanged_meters_then_report_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let json = dir.path().join("keys.json");
    key_file(&json, 3, 4059);
    let keys = json.to_str().unwrap();

    let first = stdout(&urja(&["import", keys], &data));
    assert!(first.contains("imported 3 meter(s)"), "{first}");
    assert!(
        first.contains("new 3, moved 0, updated 0, unchanged 0"),
        "{first}"
    );
    assert!(
        first.contains("plain text"),
        "the reminder about the file:\n{first}"
    );
    assert!(
        data.join("master.key").exists(),
        "a master key was generated"
    );

    let again = stdout(&urja(&["import", keys], &data));
    assert!(
        again.contains("new 0, moved 0, updated 0, unchanged 3"),
        "{again}"
    );

    // The same meters behind another port, as CSV: they moved.
    let csv = dir.path().join("keys.csv");
    key_file(&csv, 3, 5059);
    let moved = stdout(&urja(&["import", csv.to_str().unwrap()], &data));
    assert!(moved.contains("new 0, moved 3"), "{moved}");

    let report = stdout(&urja(&["report", "--since", "1h"], &data));
    assert!(report.contains("Head-end failure report"), "{report}");
    assert!(report.contains("Sessions by job"), "{report}");
}

#[test]
fn import_refuses_a_broken_key_file_and_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        br#"{"format": "urja-sim-keys/1", "meters": [{"serial": "X"}]}"#,
    )
    .unwrap();
    let out = urja(&["import", bad.to_str().unwrap()], &data);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.json"),
        "the error names the file:\n{stderr}"
    );
    let report = stdout(&urja(&["report"], &data));
    assert!(report.contains("Head-end failure report"), "{report}");
}
