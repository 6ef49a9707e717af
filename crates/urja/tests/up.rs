//! `urja up --simulate N` (the README's first command) runs the system end to end: the binary
//! starts N simulated meters and the head-end reads every one of them over HLS + AES-GCM.

use std::process::Command;

#[test]
fn up_collects_from_every_simulated_meter() {
    let out = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args([
            "up",
            "--simulate",
            "25",
            "--once",
            "--base-address",
            "127.46.0.1",
            "--port",
            "0",
            "--no-outages",
        ])
        .output()
        .expect("urja runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "urja up failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("25 simulated meter(s)"), "{stdout}");
    assert!(
        stdout.contains("25/25 meters read"),
        "every meter must be read:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("failed:"), "{stdout}");
}

#[test]
fn up_without_meters_says_what_to_do() {
    let out = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args(["up"])
        .output()
        .expect("urja runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--simulate"));
}
