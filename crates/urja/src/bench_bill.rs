//! `urja bench bill`: a postpaid billing cycle at scale. N consumers are seeded in a fresh store
//! as a utility's would stand on a cycle day: each with a service point, a meter, a billing
//! account, the meter's billing-profile rows at both ends of the period (cumulative kWh and
//! kVAh per TOD zone, the period's maximum demand), last month's bill, and for every third
//! consumer a payment against it. Then cycle 1 is run for November (`billing::cycle`: the
//! determinants from the registers, the account's statement for arrears and late payment, the
//! tamper periods, the bill computed, hashed and issued), then run again, which must issue
//! nothing. In the same process N bill rows of the same size are inserted raw into a fresh
//! file as a baseline. Last, M bills are made into PDFs as the API makes them.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use billing::bill::{Bill, BillInput, PostpaidTariff, compute};
use billing::cycle::{DEFAULT_POSTPAID_TARIFFS, PostpaidBook, run_cycle_reporting};
use chrono::{Duration, NaiveDate, Utc};
use mdm::calendar::day_bounds;
use mdm::determinants::Metering;
use model::{BillingReading, Demand, MeterSerial};
use store::Store;

use crate::bench::{bar, peak_rss_kib};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchBillArgs {
    /// Postpaid consumers billed.
    #[arg(long, default_value_t = 100_000)]
    pub consumers: u32,
    /// Bills made into PDFs, to time the PDF rate; 0 skips it.
    #[arg(long, default_value_t = 2_000)]
    pub pdfs: u32,
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// The cycle is run on Dec 2 for November.
fn run_date() -> NaiveDate {
    day(2026, 12, 2)
}

const CHUNK: usize = 10_000;

pub async fn bill(args: BenchBillArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || run(&args))
        .await
        .context("the benchmark thread")?
}

fn run(args: &BenchBillArgs) -> Result<()> {
    if args.consumers == 0 {
        bail!("--consumers needs at least one");
    }
    let n = args.consumers as usize;
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!(
        "urja bench bill: {n} postpaid consumer(s), cycle 1 for November 2026, {cores} core(s); \
         SQLite WAL, synchronous=NORMAL"
    );
    let tariffs: Vec<PostpaidTariff> =
        serde_json::from_str(DEFAULT_POSTPAID_TARIFFS).context("the default tariffs")?;
    let book = PostpaidBook {
        versions: tariffs.clone(),
    };
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let path = dir.path().join("urja.sqlite");
    drop(Store::open(&path).context("creating the store")?);
    let t_seed = Instant::now();
    let october = seed(&path, n, &tariffs)?;
    println!(
        "seeded in {:.1} s (2 billing-profile rows, October's bill of {} and for every third \
         consumer a payment, each)",
        t_seed.elapsed().as_secs_f64(),
        october.current
    );

    let store = Store::open(&path)?;
    let metering = Metering::default();
    let progress = bar(n, "billing");
    let t0 = Instant::now();
    let report = run_cycle_reporting(&store, &book, 1, run_date(), &metering, &mut |done| {
        progress.set_position(done as u64)
    })?;
    let secs = t0.elapsed().as_secs_f64();
    progress.finish_and_clear();
    if report.new != n || report.provisional != 0 || !report.failed.is_empty() {
        bail!(
            "the cycle billed {} of {n} ({} provisional); failed: {:?}",
            report.new,
            report.provisional,
            report.failed.iter().take(3).collect::<Vec<_>>()
        );
    }
    let rate = n as f64 / secs;
    println!(
        "cycle run: {secs:.2} s, {rate:.0} bills/s; {:.1} min at this rate for 1,000,000",
        1_000_000.0 / rate / 60.0
    );

    let t1 = Instant::now();
    let again = run_cycle_reporting(
        &store,
        &book,
        1,
        run_date() + Duration::days(1),
        &metering,
        &mut |_| {},
    )?;
    if again.unchanged != n {
        bail!("the re-run issued bills: {again:?}");
    }
    println!(
        "re-run (issues nothing): {:.2} s, {:.0} consumers/s",
        t1.elapsed().as_secs_f64(),
        n as f64 / t1.elapsed().as_secs_f64()
    );

    let sample = store.bills_of("BP00000003", 1)?;
    let body = sample
        .first()
        .map(|b| b.body.clone())
        .context("no bill for BP00000003")?;
    let raw_secs = raw_inserts(&dir.path().join("raw.sqlite"), n, &body)?;
    let raw_rate = n as f64 / raw_secs;
    println!("baseline (raw inserts of {n} bill rows): {raw_secs:.2} s, {raw_rate:.0} rows/s");
    println!("ratio cycle/baseline: {:.3}", rate / raw_rate);

    if args.pdfs > 0 {
        let m = (args.pdfs as usize).min(n);
        let ids: Vec<u64> = (0..m)
            .map(|i| store.bills_of(&format!("BP{i:08}"), 1))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter_map(|b| b.first().map(|b| b.id))
            .collect();
        let now = Utc::now();
        let t2 = Instant::now();
        let mut bytes = 0usize;
        for id in &ids {
            let pdf = billing::pdf::from_store(&store, *id, now)?
                .with_context(|| format!("bill {id} went missing"))?;
            bytes += pdf.len();
        }
        let secs = t2.elapsed().as_secs_f64();
        println!(
            "PDFs: {} in {secs:.2} s, {:.0} PDFs/s on one thread, {:.1} KiB each; {:.0} s at \
             this rate for 1,000,000 on one core",
            ids.len(),
            ids.len() as f64 / secs,
            bytes as f64 / ids.len().max(1) as f64 / 1024.0,
            1_000_000.0 / (ids.len() as f64 / secs)
        );
    }
    println!("peak RSS: {} MiB", peak_rss_kib().unwrap_or(0) / 1024);
    Ok(())
}

/// A billing-profile row at IST midnight of `date`, cumulative `wh` split over two TOD zones.
fn billing_row(meter: &MeterSerial, date: NaiveDate, wh: i64) -> BillingReading {
    let at = day_bounds(date).0;
    let peak = wh / 3;
    BillingReading {
        meter: meter.clone(),
        billing_date: at,
        avg_power_factor: Some(0.94),
        import_wh: wh,
        tod_import_wh: vec![peak, wh - peak],
        import_vah: wh + wh / 16,
        tod_import_vah: vec![peak + peak / 16, (wh - peak) + (wh - peak) / 16],
        md_w: Some(Demand {
            value: 1_800.0,
            at: Some(at - Duration::days(4)),
        }),
        tod_md_w: vec![],
        md_va: Some(Demand {
            value: 1_900.0,
            at: Some(at - Duration::days(4)),
        }),
        tod_md_va: vec![],
        power_on_minutes: Some(43_000),
        export_wh: None,
        export_vah: None,
        reactive_q1_q4_varh: None,
        quality: vec![],
    }
}

/// Seeds `n` consumers straight into the file, [`CHUNK`] per transaction; October's bill (the
/// same for all, 210 kWh under the residential tariff).
fn seed(path: &std::path::Path, n: usize, tariffs: &[PostpaidTariff]) -> Result<Bill> {
    let residential = tariffs
        .iter()
        .find(|t| t.base.category == "residential")
        .context("no residential tariff in the defaults")?;
    let october = compute(
        residential,
        &BillInput::metered(
            "BP",
            day(2026, 10, 1),
            day(2026, 10, 31),
            day(2026, 11, 2),
            2_000,
            210_000,
        ),
    )?;
    let body = serde_json::to_string(&october)?;
    let since = day_bounds(day(2026, 1, 1)).0.timestamp_millis();
    let now = Utc::now().timestamp_millis();
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let progress = bar(n, "seeding");
    for start in (0..n).step_by(CHUNK) {
        let tx = conn.transaction()?;
        {
            let mut consumer = tx.prepare_cached(
                "INSERT INTO consumer (consumer_no, name, category, net_metered, created_at) \
                 VALUES (?1, ?2, 'residential', 0, ?3)",
            )?;
            let mut sp = tx.prepare_cached(
                "INSERT INTO service_point (id, address, sanctioned_load_w) \
                 VALUES (?1, ?2, 2000)",
            )?;
            let mut connect = tx.prepare_cached(
                "INSERT INTO service_point_consumer (service_point, valid_from, consumer_no) \
                 VALUES (?1, ?2, ?3)",
            )?;
            let mut install = tx.prepare_cached(
                "INSERT INTO meter_installation (meter, valid_from, service_point) \
                 VALUES (?1, ?2, ?3)",
            )?;
            let mut account = tx.prepare_cached(
                "INSERT INTO billing_account (consumer_no, cycle_day, contract_demand, \
                 opening_arrears, created_at) VALUES (?1, 1, NULL, 0, ?2)",
            )?;
            let mut row = tx.prepare_cached(
                "INSERT INTO billing_reading (meter, billing_date, reading, received_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut bill = tx.prepare_cached(
                "INSERT INTO bill (consumer_no, period_from, period_to, version, state, \
                 provisional, input_hash, body, current, payable, carried_forward, due_date, \
                 created_at) VALUES (?1, '2026-10-01', '2026-10-31', 1, 'issued', 0, 'seed', \
                 ?2, ?3, ?4, 0, ?5, ?6)",
            )?;
            let mut payment = tx.prepare_cached(
                "INSERT INTO payment (gateway, payment_id, consumer_no, amount, status, body, \
                 paid_at, received_at, settled_at, digital) \
                 VALUES ('pg', ?1, ?2, ?3, 'applied', '{}', ?4, ?4, ?4, 1)",
            )?;
            for i in start..(start + CHUNK).min(n) {
                let c = format!("BP{i:08}");
                let s = format!("SB{i:08}");
                let meter = MeterSerial::new(format!("MB{i:08}"))?;
                consumer.execute(rusqlite::params![c, format!("Consumer {i}"), since])?;
                sp.execute(rusqlite::params![s, format!("{i} Bench Nagar")])?;
                connect.execute(rusqlite::params![s, since, c])?;
                install.execute(rusqlite::params![meter.as_str(), since, s])?;
                account.execute(rusqlite::params![c, since])?;
                let base = 1_000_000 + (i as i64 % 5_000) * 100;
                let used = 120_000 + (i as i64 * 37) % 300_000;
                for (date, wh) in [(day(2026, 11, 1), base), (day(2026, 12, 1), base + used)] {
                    let r = billing_row(&meter, date, wh);
                    row.execute(rusqlite::params![
                        meter.as_str(),
                        r.billing_date.timestamp_millis(),
                        serde_json::to_string(&r)?,
                        now
                    ])?;
                }
                bill.execute(rusqlite::params![
                    c,
                    body,
                    october.current.0,
                    october.payable_by_due_date.0,
                    october.due_date.to_string(),
                    now
                ])?;
                if i % 3 == 0 {
                    let paid = day_bounds(day(2026, 11, 10)).0.timestamp_millis();
                    payment.execute(rusqlite::params![
                        format!("pay_{i}"),
                        c,
                        october.current.0 / 2,
                        paid
                    ])?;
                }
            }
        }
        tx.commit()?;
        progress.set_position(((start + CHUNK).min(n)) as u64);
    }
    progress.finish_and_clear();
    Ok(october)
}

/// The baseline: `n` bill rows with `body` straight into `bill` of an empty file, a prepared
/// statement, 1,000 rows per transaction, nothing read or computed.
fn raw_inserts(path: &std::path::Path, n: usize, body: &str) -> Result<f64> {
    drop(Store::open(path)?);
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let now = Utc::now().timestamp_millis();
    let t0 = Instant::now();
    for start in (0..n).step_by(1_000) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO bill (consumer_no, period_from, period_to, version, state, \
                 provisional, input_hash, body, current, payable, carried_forward, due_date, \
                 created_at) VALUES (?1, '2026-11-01', '2026-11-30', 1, 'issued', 0, ?2, ?3, \
                 100000, 100000, 0, '2026-12-17', ?4)",
            )?;
            for i in start..(start + 1_000).min(n) {
                insert.execute(rusqlite::params![
                    format!("BP{i:08}"),
                    format!("{i:064x}"),
                    body,
                    now
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(t0.elapsed().as_secs_f64())
}
