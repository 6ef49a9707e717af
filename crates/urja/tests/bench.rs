//! `urja bench hes`, `urja bench ingest` and `urja bench charge` run end to end on small inputs and print figures
//! that parse (their values depend on the machine and are not checked here).

use std::process::Command;

fn figure(stdout: &str, label: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line:\n{stdout}"));
    line[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

#[test]
fn bench_hes_prints_figures_that_parse() {
    let out = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args([
            "bench",
            "hes",
            "--meters",
            "50",
            "--concurrency",
            "16",
            "--base-address",
            "127.48.0.1",
        ])
        .env_remove("URJA_MASTER_KEY")
        .output()
        .expect("urja runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "urja bench hes failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(figure(&stdout, "sessions:"), 50.0, "{stdout}");
    assert!(figure(&stdout, "total time:") > 0.0);
    assert!(figure(&stdout, "sessions per second:") > 0.0);
    // A day of 15-minute intervals from each meter.
    assert!(
        figure(&stdout, "intervals collected:") >= 50.0 * 90.0,
        "{stdout}"
    );
    assert!(figure(&stdout, "messages relayed:") > 0.0);
    assert_eq!(figure(&stdout, "baseline sessions:"), 50.0, "{stdout}");
    assert!(stdout.contains("(50 ok, 0 failed; association"), "{stdout}");
    assert!(figure(&stdout, "baseline sessions per second:") > 0.0);
    assert!(figure(&stdout, "ratio collection/baseline:") > 0.0);
    assert!(figure(&stdout, "peak RSS of the HES process:") > 0.0);
}

#[test]
fn bench_ingest_prints_figures_that_parse() {
    let out = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args(["bench", "ingest", "--meters", "40", "--days", "1"])
        .output()
        .expect("urja runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "urja bench ingest failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("40 meter(s) x 1 day(s): 40 messages"),
        "{stdout}"
    );
    assert!(figure(&stdout, "ingest:") > 0.0);
    assert!(figure(&stdout, "ratio ingest/baseline:") > 0.0);
    assert!(figure(&stdout, "reads per hour at this rate:") > 0.0);
}

#[test]
fn bench_charge_charges_everyone_once_and_prints_figures_that_parse() {
    let out = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args([
            "bench",
            "charge",
            "--consumers",
            "2000",
            "--figures-consumers",
            "300",
        ])
        .output()
        .expect("urja runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "urja bench charge failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("2000 consumer(s), day 2026-12-15"),
        "{stdout}"
    );
    assert!(stdout.contains("seeded: 2000 wallets"), "{stdout}");
    assert!(figure(&stdout, "charge run:") > 0.0);
    assert!(
        stdout.contains("(2000 charged, 0 already, 0 waiting, 0 failed;"),
        "{stdout}"
    );
    assert!(figure(&stdout, "re-run:") > 0.0);
    assert!(
        stdout.contains("nothing posted (2000 already charged)"),
        "{stdout}"
    );
    assert!(figure(&stdout, "baseline (raw inserts of 2000 ledger rows):") > 0.0);
    assert!(figure(&stdout, "ratio charge/baseline:") > 0.0);
    assert!(stdout.contains("seeded 300 consumer(s) with a day of block load (28800 intervals)"));
    assert!(figure(&stdout, "figures (daily_for_all):") > 0.0);
}
