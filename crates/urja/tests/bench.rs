//! `urja bench hes` and `urja bench ingest` run end to end on small inputs and print figures
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
