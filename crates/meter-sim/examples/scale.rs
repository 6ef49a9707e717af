//! Measures how long a fleet of N meters takes to start and how much resident memory it uses.
//!
//! `cargo run --release -p meter-sim --example scale -- 10000 [base-address] [port]`

use std::net::Ipv4Addr;
use std::time::Instant;

use meter_sim::{Fleet, FleetConfig};

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let base: Ipv4Addr = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(Ipv4Addr::new(127, 201, 0, 1));
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let before = vm_rss_kib();
    let t0 = Instant::now();
    let fleet = Fleet::start(FleetConfig::new(n, base, port, 1))
        .await
        .expect("fleet starts");
    let started = t0.elapsed();
    // Let every accept task run once (register with the reactor).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = vm_rss_kib();
    // Touch a few meters over TCP so the numbers include a working fleet.
    for i in [0, n / 2, n - 1] {
        let s = tokio::net::TcpStream::connect(fleet.address(i))
            .await
            .expect("meter accepts");
        drop(s);
    }
    println!("meters            {n}");
    println!(
        "addresses         {} .. {} port {}",
        fleet.address(0).ip(),
        fleet.address(n - 1).ip(),
        fleet.port()
    );
    println!("start time        {:.3} s", started.as_secs_f64());
    println!("VmRSS before      {before} KiB");
    println!("VmRSS after       {after} KiB");
    println!(
        "per idle meter    {} bytes (resident, incl. listener socket registration and accept task)",
        (after.saturating_sub(before)) * 1024 / n as u64
    );
    fleet.stop().await;
}
