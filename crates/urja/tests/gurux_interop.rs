//! Interoperability with an independent DLMS/COSEM implementation: the Gurux Python client
//! (`tests/interop/gurux_read.py`) reads meters served by the real `urja sim` binary over the TCP
//! wrapper, for each IS 15959 association (public, meter reader with LLS, utility settings with
//! HLS and authenticated encryption), and the test checks what it read against IS 15959.
//!
//! Needs `python3` with the `gurux-dlms` and `gurux-net` packages. Without them the test prints
//! `SKIPPED: ...` and passes, unless `URJA_REQUIRE_GURUX=1`, when it fails.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// IST, the meters' time zone: UTC+05:30.
const IST_OFFSET_S: i64 = 5 * 3600 + 30 * 60;
/// How far back the block-load read by range goes.
const RANGE_HOURS: i64 = 2;

/// The IS 15959 block-load capture objects of a single-phase meter, in order (after the clock).
const BLOCK_LOAD_1P: [&str; 6] = [
    "1.0.12.27.0.255", // average voltage
    "1.0.11.27.0.255", // average current
    "1.0.1.29.0.255",  // block kWh import
    "1.0.9.29.0.255",  // block kVAh import
    "1.0.2.29.0.255",  // block kWh export
    "1.0.10.29.0.255", // block kVAh export
];
/// The block energies every block-load profile ends with (1P and 3P/CT alike).
const BLOCK_ENERGIES: [&str; 4] = [
    "1.0.1.29.0.255",
    "1.0.9.29.0.255",
    "1.0.2.29.0.255",
    "1.0.10.29.0.255",
];

/// DLMS units (Blue Book): the ones IS 15959 gives the objects read here.
const UNIT_WH: i64 = 30;
const UNIT_VAH: i64 = 31;
const UNIT_A: i64 = 33;
const UNIT_V: i64 = 35;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/gurux_read.py")
}

/// `Ok(())` when python3 can import Gurux, else why not.
fn gurux_available() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", "import gurux_dlms, gurux_net, gurux_common"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Err(e) => Err(format!("python3 could not be run: {e}")),
        Ok(o) if !o.status.success() => Err(format!(
            "python3 cannot import the Gurux modules (pip install gurux-dlms gurux-net): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => Ok(()),
    }
}

/// The simulator process; killed when dropped, also when a check panics.
struct Simulator {
    child: Child,
    keys: PathBuf,
    /// Its stderr (a file, so a chatty simulator never blocks on a full pipe).
    log: PathBuf,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.keys);
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Simulator {
    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A loopback base address 127.N.0.1 and a port on which both 127.N.0.1 and 127.N.0.2 are free.
fn free_addresses() -> (Ipv4Addr, u16) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let start = (std::process::id() ^ nanos) % 150;
    for i in 0..150u32 {
        let n = 100 + ((start + i) % 150) as u8;
        let first = Ipv4Addr::new(127, n, 0, 1);
        let second = Ipv4Addr::new(127, n, 0, 2);
        let Ok(l1) = TcpListener::bind(SocketAddrV4::new(first, 0)) else {
            continue;
        };
        let Ok(port) = l1.local_addr().map(|a| a.port()) else {
            continue;
        };
        if TcpListener::bind(SocketAddrV4::new(second, port)).is_ok() {
            return (first, port);
        }
    }
    panic!("no free loopback address/port pair found");
}

/// Starts `urja sim` with two meters on `transport` ("wrapper" or "hdlc"), writing its key file
/// as `ext` ("json" or "csv").
fn start_simulator(transport: &str, ext: &str) -> Simulator {
    let (base, port) = free_addresses();
    let keys = std::env::temp_dir().join(format!(
        "urja-gurux-keys-{}-{port}.{ext}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&keys);
    let log = keys.with_extension("log");
    let stderr = std::fs::File::create(&log).expect("create the simulator log");
    let child = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args([
            "sim",
            "--meters",
            "2",
            "--base-address",
            &base.to_string(),
            "--port",
        ])
        .arg(port.to_string())
        .args(["--transport", transport, "--no-outages"])
        .arg("--keys-out")
        .arg(&keys)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn `urja sim`");
    let mut sim = Simulator { child, keys, log };

    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddrV4::new(base, port).into();
    loop {
        if let Ok(Some(status)) = sim.child.try_wait() {
            let err = sim.stderr_text();
            panic!("`urja sim` exited early ({status}): {err}");
        }
        let listening = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
        let keys_ready = std::fs::read_to_string(&sim.keys)
            .ok()
            .is_some_and(|s| key_file_complete(&s, ext));
        if listening && keys_ready {
            return sim;
        }
        assert!(
            Instant::now() < deadline,
            "`urja sim` did not listen on {addr} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the simulator has finished writing its key file (two meters).
fn key_file_complete(text: &str, ext: &str) -> bool {
    if ext == "csv" {
        text.ends_with('\n') && text.lines().count() == 3
    } else {
        serde_json::from_str::<Value>(text).is_ok()
    }
}

/// Runs the Gurux client for `RANGE_HOURS`; returns its exit code and the JSON it printed.
fn gurux_read(keys: &Path, meter: &Value, association: &str, extra: &[&str]) -> (i32, Value) {
    gurux_read_hours(keys, meter, association, RANGE_HOURS, extra)
}

fn gurux_read_hours(
    keys: &Path,
    meter: &Value,
    association: &str,
    hours: i64,
    extra: &[&str],
) -> (i32, Value) {
    let host = meter["address"].as_str().expect("meter address");
    let port = meter["port"].as_u64().expect("meter port").to_string();
    let out = Command::new("python3")
        .arg(script())
        .arg("--keys")
        .arg(keys)
        .args([
            "--host",
            host,
            "--port",
            &port,
            "--association",
            association,
        ])
        .args(["--hours", &hours.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run gurux_read.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("gurux_read.py printed no JSON ({e}); stdout: {stdout}; stderr: {stderr}")
    });
    let code = out.status.code().unwrap_or(-1);
    eprintln!("gurux {association} {extra:?} on {host} -> exit {code}: {json}");
    (code, json)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff]±HH:MM` to (UTC seconds since the epoch, offset seconds).
fn parse_iso(s: &str) -> Option<(i64, i64)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 25 || b.get(10) != Some(&b'T') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let tz = s.len() - 6;
    let sign = match b.get(tz) {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let offset = sign * (num(tz + 1..tz + 3)? * 3600 + num(tz + 4..tz + 6)? * 60);
    // Days from the civil date (proleptic Gregorian), H. Hinnant's algorithm.
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset, offset))
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn int(v: &Value, what: &str) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("{what} is not an integer: {v}"))
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

fn assert_clock_is_now_ist(json: &Value) {
    let text = json["clock"].as_str().expect("clock as text");
    let (utc, offset) = parse_iso(text).unwrap_or_else(|| panic!("clock {text:?} is not ISO 8601"));
    assert_eq!(
        offset, IST_OFFSET_S,
        "meter clock {text} is not in IST (+05:30)"
    );
    let skew = (utc - now_unix()).abs();
    assert!(skew <= 60, "meter clock {text} is {skew} s away from now");
}

fn assert_register(reg: &Value, obis: &str, unit: i64, scalers: std::ops::RangeInclusive<i64>) {
    assert_eq!(reg["obis"], obis);
    assert_eq!(int(&reg["unit"], "unit"), unit, "unit of {obis}: {reg}");
    let scaler = int(&reg["scaler"], "scaler");
    assert!(
        scalers.contains(&scaler),
        "scaler of {obis} is {scaler}: {reg}"
    );
}

fn check_full_read(json: &Value, kind: &str) {
    assert_eq!(json["ok"], true, "read failed: {json}");
    assert_eq!(json["released"], true, "no clean release: {json}");
    assert_clock_is_now_ist(json);

    // kWh import: unit Wh, a cumulative energy that is plausible and not negative.
    let reg = &json["register"];
    assert_register(reg, "1.0.1.8.0.255", UNIT_WH, 0..=3);
    let kwh = num(&reg["value"], "kWh import") / 1000.0;
    assert!(
        (0.0..10_000_000.0).contains(&kwh),
        "cumulative import {kwh} kWh: {reg}"
    );
    // Voltage: unit V, near the Indian nominal 230/240 V.
    let volts = &json["voltage"];
    let vobis = if kind == "single-phase" {
        "1.0.12.7.0.255"
    } else {
        "1.0.32.7.0.255"
    };
    assert_register(volts, vobis, UNIT_V, -3..=0);
    let v = num(&volts["value"], "voltage");
    if kind != "ct-operated" {
        assert!((150.0..=300.0).contains(&v), "voltage {v} V: {volts}");
    }

    // Capture objects: the clock first, then the IS 15959 block-load channels in order.
    let cols: Vec<(i64, String, i64)> = json["capture_objects"]
        .as_array()
        .expect("capture objects")
        .iter()
        .map(|c| {
            let obis = c["obis"].as_str().expect("obis").to_string();
            (
                int(&c["class_id"], "class id"),
                obis,
                int(&c["attribute"], "attribute"),
            )
        })
        .collect();
    assert_eq!(
        cols.first(),
        Some(&(8, "0.0.1.0.0.255".to_string(), 2)),
        "clock first: {cols:?}"
    );
    let names: Vec<&str> = cols.iter().skip(1).map(|c| c.1.as_str()).collect();
    if kind == "single-phase" {
        assert_eq!(names, BLOCK_LOAD_1P, "single-phase block-load columns");
    } else {
        assert!(
            names.ends_with(&BLOCK_ENERGIES),
            "block energies last, in order: {names:?}"
        );
    }
    assert!(
        cols.iter().skip(1).all(|c| c.0 == 3 && c.2 == 2),
        "register values: {cols:?}"
    );

    // Channel units, and the scalers to read the rows with.
    let channels = json["channels"].as_array().expect("channels");
    assert_eq!(channels.len(), names.len());
    let mut scale = Vec::new();
    for ch in channels {
        let obis = ch["obis"].as_str().expect("channel obis");
        let unit = int(&ch["unit"], "channel unit");
        let expected = match obis.split('.').nth(2) {
            Some("1" | "2") => UNIT_WH,
            Some("9" | "10") => UNIT_VAH,
            Some("11" | "31" | "51" | "71") => UNIT_A,
            Some("12" | "32" | "52" | "72") => UNIT_V,
            _ => panic!("unexpected block-load channel {obis}"),
        };
        assert_eq!(unit, expected, "unit of block-load channel {obis}");
        scale.push((
            obis.to_string(),
            10f64.powi(int(&ch["scaler"], "scaler") as i32),
        ));
    }

    // Rows: inside the requested range, one per capture period, energies plausible.
    let period = int(&json["capture_period"], "capture period");
    assert!(
        period == 900 || period == 1800,
        "capture period {period} s (IS 15959: 15 or 30 min)"
    );
    let range = &json["range"];
    let (from, _) = parse_iso(range["from"].as_str().expect("from")).expect("range from");
    let (to, _) = parse_iso(range["to"].as_str().expect("to")).expect("range to");
    let rows = json["rows"].as_array().expect("rows");
    let expected = (to - from) / period;
    assert!(
        (expected - 1..=expected + 1).contains(&(rows.len() as i64)),
        "{} rows over {} s at {period} s: {rows:?}",
        rows.len(),
        to - from
    );
    let mut previous: Option<i64> = None;
    for row in rows {
        let ts = row["timestamp"].as_str().expect("row timestamp");
        let (t, offset) = parse_iso(ts).unwrap_or_else(|| panic!("row timestamp {ts:?}"));
        assert_eq!(offset, IST_OFFSET_S, "row timestamp {ts} not in IST");
        assert!(
            from <= t && t <= to,
            "row {ts} outside the requested range {range}"
        );
        assert_eq!(
            (t + IST_OFFSET_S) % period,
            0,
            "row {ts} not on a capture boundary"
        );
        if let Some(p) = previous {
            assert_eq!(
                t - p,
                period,
                "rows {p} and {t} not one capture period apart"
            );
        }
        previous = Some(t);
        let values = row["values"].as_array().expect("row values");
        assert_eq!(values.len(), scale.len(), "row width: {row}");
        // A block (one capture period) of energy: at most what 100 A per 240 V phase delivers
        // in it (whole-current meters; CT-operated ones measure through a CT, allow 100x).
        let phases = match kind {
            "single-phase" => 1.0,
            "ct-operated" => 300.0,
            _ => 3.0,
        };
        let max_wh = phases * 240.0 * 100.0 * period as f64 / 3600.0;
        for ((obis, factor), v) in scale.iter().zip(values) {
            let value = num(v, obis) * factor;
            if BLOCK_ENERGIES.contains(&obis.as_str()) {
                assert!(
                    (0.0..=max_wh).contains(&value),
                    "{obis} = {value} Wh/VAh in {row}"
                );
            } else {
                assert!(value >= 0.0, "{obis} = {value} in {row}");
            }
        }
    }
}

#[test]
fn gurux_client_reads_the_simulator() {
    if let Err(why) = gurux_available() {
        if std::env::var("URJA_REQUIRE_GURUX").as_deref() == Ok("1") {
            panic!("URJA_REQUIRE_GURUX=1 but the Gurux client cannot run: {why}");
        }
        // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: gurux_interop: {why} ***\n"
        );
        return;
    }
    let sim = start_simulator("wrapper", "json");
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(&sim.keys).expect("read key file"))
            .expect("key file is JSON");
    assert_eq!(keys["format"], "urja-sim-keys/1");
    let meters = keys["meters"].as_array().expect("meters");
    assert_eq!(meters.len(), 2, "two meters served");

    for meter in meters {
        let kind = meter["kind"].as_str().expect("meter kind");

        // Public client: the clock and the logical device name, but not the block load.
        let (code, json) = gurux_read(&sim.keys, meter, "public", &[]);
        assert_eq!(code, 0, "public read failed: {json}");
        assert_eq!(json["ok"], true);
        assert_clock_is_now_ist(&json);
        let ldn = json["logical_device_name"].as_str().unwrap_or_default();
        assert!(!ldn.is_empty(), "logical device name: {json}");
        assert_eq!(
            json["block_load_refused"], true,
            "public read the block load: {json}"
        );

        // Meter reader (LLS) and utility settings (HLS, authenticated encryption).
        for association in ["meter-reader", "utility-settings"] {
            let (code, json) = gurux_read(&sim.keys, meter, association, &[]);
            assert_eq!(code, 0, "{association} read failed: {json}");
            check_full_read(&json, kind);
        }
    }

    // Wrong secrets are refused at association time.
    let meter = &meters[0];
    let (code, json) = gurux_read(
        &sim.keys,
        meter,
        "meter-reader",
        &["--secret", "WrongPassword123"],
    );
    assert_eq!(code, 2, "LLS with a wrong password was not refused: {json}");
    assert_eq!(json["refused"], true);
    let zero = "00".repeat(16);
    let (code, json) = gurux_read(&sim.keys, meter, "utility-settings", &["--secret", &zero]);
    assert_eq!(code, 2, "HLS with a wrong secret was not refused: {json}");
    assert_eq!(json["refused"], true);
    let (code, json) = gurux_read(&sim.keys, meter, "utility-settings", &["--ek", &zero]);
    assert_eq!(
        code, 2,
        "HLS with a wrong encryption key was not refused: {json}"
    );
    assert_eq!(json["refused"], true);

    // A replayed invocation counter is refused: the same client system title starting again
    // at counter 1 after a successful session.
    let title = format!("475850{:010x}", now_unix() & 0xff_ffff_ffff);
    let fixed = [
        "--system-title",
        title.as_str(),
        "--invocation-counter",
        "1",
    ];
    let (code, json) = gurux_read(&sim.keys, meter, "utility-settings", &fixed);
    assert_eq!(
        code, 0,
        "utility-settings with a fixed system title failed: {json}"
    );
    let (code, json) = gurux_read(&sim.keys, meter, "utility-settings", &fixed);
    assert_eq!(
        code, 2,
        "a replayed invocation counter was not refused: {json}"
    );
    assert_eq!(json["refused"], true);

    // A day of block load through a small client PDU: the meter must answer in blocks
    // (GET-Response-with-datablock), ciphered; and it still serves a good client after the
    // refusals above.
    let small_pdu = ["--max-pdu", "256"];
    let (code, json) = gurux_read_hours(&sim.keys, meter, "utility-settings", 24, &small_pdu);
    assert_eq!(code, 0, "a day of block load in blocks failed: {json}");
    check_full_read(&json, meter["kind"].as_str().unwrap_or_default());
    drop(sim);
}

/// The same client over HDLC (IEC 62056-46 framing on the TCP connection: SNRM/UA, I-frames with
/// segmentation, DISC), with the simulator's CSV key file.
#[test]
fn gurux_client_reads_the_simulator_over_hdlc() {
    if let Err(why) = gurux_available() {
        if std::env::var("URJA_REQUIRE_GURUX").as_deref() == Ok("1") {
            panic!("URJA_REQUIRE_GURUX=1 but the Gurux client cannot run: {why}");
        }
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: gurux_interop (hdlc): {why} ***\n"
        );
        return;
    }
    let sim = start_simulator("hdlc", "csv");
    let csv = std::fs::read_to_string(&sim.keys).expect("read key file");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("CSV header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let first: Vec<&str> = lines.next().expect("a meter row").split(',').collect();
    assert_eq!(first[col("transport")], "hdlc");
    let meter = serde_json::json!({
        "address": first[col("address")],
        "port": first[col("port")].parse::<u64>().expect("port"),
        "kind": first[col("kind")],
    });
    let kind = first[col("kind")];

    let (code, json) = gurux_read(&sim.keys, &meter, "public", &[]);
    assert_eq!(code, 0, "public read over HDLC failed: {json}");
    assert_clock_is_now_ist(&json);
    assert_eq!(
        json["block_load_refused"], true,
        "public read the block load: {json}"
    );
    for association in ["meter-reader", "utility-settings"] {
        let (code, json) = gurux_read_hours(&sim.keys, &meter, association, 24, &[]);
        assert_eq!(code, 0, "{association} read over HDLC failed: {json}");
        assert_eq!(json["transport"], "hdlc");
        check_full_read(&json, kind);
    }
    let (code, json) = gurux_read(
        &sim.keys,
        &meter,
        "meter-reader",
        &["--secret", "WrongPassword123"],
    );
    assert_eq!(
        code, 2,
        "LLS with a wrong password was not refused over HDLC: {json}"
    );
    drop(sim);
}
