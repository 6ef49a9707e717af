//! `urja bench charge`: the prepaid daily charge run at scale. N wallets are seeded in a fresh
//! store (an opening balance each, and the month charged through the day before, with its
//! month-to-date units in total and per TOD zone), then one day is charged for all of them
//! through `prepaid::charging::run_day` (TOD, cess, a levy and a subsidy in the tariffs;
//! committed transactions in WAL), then the same day again, which must post nothing. In the same
//! process N ledger rows are inserted raw into a fresh file (prepared statement, the same rows
//! per transaction) as a baseline. Separately, a day of block load for a smaller number of
//! consumers is seeded and their figures taken out with `mdm::determinants::daily_for_all`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use mdm::calendar::day_bounds;
use mdm::determinants::{DayFigures, Metering, daily_for_all};
use model::Paise;
use prepaid::charging::{Account, DayUse, RUN_CHUNK, run_day};
use prepaid::tariff::{BillingUnit, Levy, Line, MonthUse, Rate, Slab, Subsidy, Tariff, TariffBook};
use store::Store;
use store::prepaid::{ChargeState, StepEntry, WalletStep};

use crate::bench::{bar, peak_rss_kib};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchChargeArgs {
    /// Prepaid consumers charged.
    #[arg(long, default_value_t = 100_000)]
    pub consumers: u32,
    /// Consumers given a day of 15-minute block load to time the figures' extraction
    /// (`daily_for_all`); 0 skips it.
    #[arg(long, default_value_t = 20_000)]
    pub figures_consumers: u32,
}

/// The day charged: mid-month, so the slabs the month has reached matter.
fn the_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 15).unwrap_or_default()
}

pub async fn charge(args: BenchChargeArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || run(&args))
        .await
        .context("the benchmark thread")?
}

fn run(args: &BenchChargeArgs) -> Result<()> {
    if args.consumers == 0 {
        bail!("--consumers needs at least one");
    }
    let n = args.consumers as usize;
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!(
        "urja bench charge: {n} consumer(s), day {}, {RUN_CHUNK} consumers per transaction, \
         {cores} core(s); SQLite WAL, synchronous=NORMAL",
        the_day()
    );
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let store = Store::open(dir.path().join("urja.sqlite")).context("opening the store")?;
    let book = book()?;
    let accounts: Vec<Account> = (0..n)
        .map(|i| Account {
            consumer_no: format!("PP{i:08}"),
            category: if i % 10 == 0 {
                "commercial"
            } else {
                "domestic"
            }
            .into(),
            sanctioned_w: 1000 + 500 * (i % 9) as u32,
            charge_from: None,
        })
        .collect();

    let t_seed = Instant::now();
    seed(&store, &book, &accounts)?;
    println!(
        "seeded: {n} wallets charged through {} in {:.1} s",
        the_day() - Duration::days(1),
        t_seed.elapsed().as_secs_f64()
    );

    let progress = bar(n, "charging");
    let t0 = Instant::now();
    let report = run_day(&store, &book, the_day(), &accounts, usage, |done| {
        progress.set_position(done as u64)
    })?;
    let secs = t0.elapsed().as_secs_f64();
    progress.finish_and_clear();
    if report.charged != n || report.days_charged != n as u64 || !report.failed.is_empty() {
        bail!(
            "the run charged {} of {n} ({} failed, first: {:?})",
            report.charged,
            report.failed.len(),
            report.failed.first()
        );
    }
    let rate = n as f64 / secs;
    println!(
        "charge run: {secs:.2} s, {rate:.0} consumers/s ({} charged, {} already, {} waiting, {} \
         failed; {} debited)",
        report.charged,
        report.already,
        report.waiting.len(),
        report.failed.len(),
        report.total
    );

    let progress = bar(n, "re-running");
    let t1 = Instant::now();
    let again = run_day(&store, &book, the_day(), &accounts, usage, |done| {
        progress.set_position(done as u64)
    })?;
    let again_secs = t1.elapsed().as_secs_f64();
    progress.finish_and_clear();
    if again.charged != 0 || again.already != n {
        bail!(
            "the re-run posted for {} consumer(s), {} already charged",
            again.charged,
            again.already
        );
    }
    println!(
        "re-run: {again_secs:.2} s, {:.0} consumers/s, nothing posted ({} already charged)",
        n as f64 / again_secs,
        again.already
    );
    for a in accounts.iter().step_by((n / 100).max(1)) {
        if !store.wallet_check(&a.consumer_no)? {
            bail!("the wallet of {} does not add up", a.consumer_no);
        }
    }

    let raw_path = dir.path().join("raw.sqlite");
    {
        // The wallets exist (the ledger refers to them), untimed.
        let raw = Store::open(&raw_path).context("creating the baseline file")?;
        for chunk in accounts.chunks(RUN_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|a| a.consumer_no.as_str()).collect();
            raw.wallet_open_many(&ids, Utc::now())?;
        }
    }
    let sample = store
        .wallet_entries(&accounts[0].consumer_no, 1, 1)?
        .into_iter()
        .next()
        .context("the first consumer's daily charge")?;
    let raw_secs = raw_inserts(&raw_path, &accounts, &sample.detail)?;
    let raw_rate = n as f64 / raw_secs;
    println!("baseline (raw inserts of {n} ledger rows): {raw_secs:.2} s, {raw_rate:.0} rows/s");
    println!("ratio charge/baseline: {:.3}", rate / raw_rate);

    if args.figures_consumers > 0 {
        figures(dir.path(), args.figures_consumers as usize, n)?;
    }
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unknown"),
    }
    Ok(())
}

/// A domestic and a commercial tariff with every feature: slabs, TOD rebate and surcharges, duty,
/// cess, a municipal levy and (domestic) a state subsidy on the first 100 kWh.
fn book() -> Result<TariffBook> {
    let r = |s: &str| Rate::parse(s);
    let domestic = Tariff {
        code: "LMV-1".into(),
        category: "domestic".into(),
        effective_from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap_or_default(),
        unit: BillingUnit::Kwh,
        fixed_per_kw_day: r("3.66667")?,
        slabs: vec![
            Slab {
                up_to_kwh: Some(100),
                rate: r("5.5")?,
            },
            Slab {
                up_to_kwh: Some(300),
                rate: r("5.75")?,
            },
            Slab {
                up_to_kwh: None,
                rate: r("6.5")?,
            },
        ],
        duty_bp: 500,
        tod_bp: [-2000, 2000, 0, 2000, 0, 0, 0, 0],
        cess_per_unit: r("0.10")?,
        levies: vec![Levy {
            name: "municipal".into(),
            bp: 200,
            on: vec![Line::Energy, Line::Tod, Line::Fixed],
        }],
        subsidies: vec![Subsidy::PerUnit {
            rate: r("1")?,
            first_kwh: 100,
        }],
    };
    let commercial = Tariff {
        code: "LMV-2".into(),
        category: "commercial".into(),
        unit: BillingUnit::Kvah,
        fixed_per_kw_day: r("11.5")?,
        slabs: vec![Slab {
            up_to_kwh: None,
            rate: r("7.5")?,
        }],
        duty_bp: 750,
        subsidies: vec![],
        ..domestic.clone()
    };
    for t in [&domestic, &commercial] {
        t.check()?;
    }
    Ok(TariffBook {
        versions: vec![domestic, commercial],
    })
}

/// A consumer's day, the same on every run: 3 to 15 kWh, a power factor of about 0.9, spread over
/// the four zones of the default TOD day by shares drawn from the consumer and the day.
fn usage(account: &Account, day: NaiveDate) -> Option<DayUse> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in account
        .consumer_no
        .bytes()
        .chain(day.ordinal().to_le_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let wh = 3000 + (h % 12_000) as i64;
    let vah = wh * 10 / 9;
    let shares = [
        (h >> 16) % 8 + 4,
        (h >> 24) % 8 + 2,
        (h >> 32) % 8 + 4,
        (h >> 40) % 8 + 3,
    ];
    let total: u64 = shares.iter().sum();
    let split = |units: i64| {
        let mut zones = [0i64; 8];
        for (z, s) in shares.iter().enumerate() {
            zones[z] = units * *s as i64 / total as i64;
        }
        zones[2] += units - zones.iter().sum::<i64>();
        zones
    };
    Some(DayUse {
        import_wh: wh,
        import_vah: vah,
        zone_wh: split(wh),
        zone_vah: split(vah),
        estimated: false,
    })
}

/// Opens the wallets with ₹2,000 each and sets where their charging stands as if the days
/// before the benchmark's were charged (the month-to-date figures and what they cost; the
/// ledger holds the opening balance only).
fn seed(store: &Store, book: &TariffBook, accounts: &[Account]) -> Result<()> {
    let day = the_day();
    let first = day.with_day(1).unwrap_or(day);
    let before = day - Duration::days(1);
    let progress = bar(accounts.len(), "seeding");
    for chunk in accounts.chunks(RUN_CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|a| a.consumer_no.as_str()).collect();
        store.wallet_open_many(&ids, Utc::now())?;
        let outcomes = store.wallet_steps(&ids, Utc::now(), |i, _| {
            let a = &chunk[i];
            let tariff = book.in_force(&a.category, day)?;
            let month = first
                .iter_days()
                .take_while(|d| *d <= before)
                .filter_map(|d| usage(a, d))
                .fold(MonthUse::default(), |m, u| m.plus(&u.billed(tariff.unit)));
            let bill = tariff.month_to_date(&month, before.day(), 31, a.sanctioned_w);
            Ok::<_, prepaid::tariff::TariffError>(Some(WalletStep {
                entries: vec![StepEntry {
                    cause: "opening".into(),
                    kind: "opening_balance",
                    amount: Paise(200_000),
                    detail: "{}".into(),
                }],
                state: ChargeState {
                    month: Some(first),
                    through: Some(before),
                    units: month.units,
                    zone_units: month.zones,
                    charged: bill.total().0,
                    trueups: 0,
                    estimated: 0,
                },
            }))
        })?;
        if let Some(bad) = outcomes
            .iter()
            .find(|o| !matches!(o, store::prepaid::StepOutcome::Posted { .. }))
        {
            bail!("seeding a wallet: {bad:?}");
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(())
}

/// The baseline: one ledger row per consumer straight into `wallet_entry` of a file holding
/// only the wallets, with a prepared statement, [`RUN_CHUNK`] rows per transaction, nothing read,
/// computed or updated.
fn raw_inserts(path: &std::path::Path, accounts: &[Account], detail: &str) -> Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let now = Utc::now().timestamp_millis();
    let cause = format!("daily/{}", the_day());
    let t0 = Instant::now();
    for chunk in accounts.chunks(RUN_CHUNK) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO wallet_entry (consumer_no, n, cause, kind, amount, balance_after, \
                 detail, at) VALUES (?1, 2, ?2, 'daily_charge', ?3, ?4, ?5, ?6)",
            )?;
            for a in chunk {
                insert.execute(rusqlite::params![
                    a.consumer_no,
                    cause,
                    -9_000,
                    191_000,
                    detail,
                    now
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Seeds `m` consumers, each with a meter and a day of 15-minute block load, in a file of its
/// own, and times `daily_for_all` over them; the rate is also given for `n` consumers.
fn figures(dir: &std::path::Path, m: usize, n: usize) -> Result<()> {
    let path = dir.join("mdm.sqlite");
    let store = Store::open(&path).context("the figures' store")?;
    drop(store);
    let (start, _) = day_bounds(the_day());
    let since = (start - Duration::days(30)).timestamp_millis();
    let start_ms = start.timestamp_millis();
    let t_seed = Instant::now();
    {
        let mut conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        let tx = conn.transaction()?;
        {
            let mut consumer = tx.prepare(
                "INSERT INTO consumer (consumer_no, name, category, net_metered, created_at) \
                 VALUES (?1, 'bench', 'domestic', 0, ?2)",
            )?;
            let mut sp = tx.prepare(
                "INSERT INTO service_point (id, address, sanctioned_load_w) VALUES (?1, '', 2000)",
            )?;
            let mut connect = tx.prepare(
                "INSERT INTO service_point_consumer (service_point, valid_from, consumer_no) \
                 VALUES (?1, ?2, ?3)",
            )?;
            let mut install = tx.prepare(
                "INSERT INTO meter_installation (meter, valid_from, service_point) \
                 VALUES (?1, ?2, ?3)",
            )?;
            let mut interval = tx.prepare(
                "INSERT INTO interval_reading (meter, interval_end, version, import_wh, \
                 import_vah, quality, received_at) VALUES (?1, ?2, 1, ?3, ?4, 0, ?2)",
            )?;
            for i in 0..m {
                let (c, s, meter) = (
                    format!("PP{i:08}"),
                    format!("SP{i:08}"),
                    format!("MT{i:08}"),
                );
                consumer.execute(rusqlite::params![c, since])?;
                sp.execute(rusqlite::params![s])?;
                connect.execute(rusqlite::params![s, since, c])?;
                install.execute(rusqlite::params![meter, since, s])?;
                for k in 1..=96i64 {
                    let wh = 20 + (i as i64 * 7 + k * 13) % 200;
                    interval.execute(rusqlite::params![
                        meter,
                        start_ms + k * 900_000,
                        wh,
                        wh * 10 / 9
                    ])?;
                }
            }
        }
        tx.commit()?;
    }
    let store = Store::open(&path)?;
    println!(
        "figures: seeded {m} consumer(s) with a day of block load ({} intervals) in {:.1} s",
        m * 96,
        t_seed.elapsed().as_secs_f64()
    );
    let t0 = Instant::now();
    let all: Vec<DayFigures> = daily_for_all(&store, the_day(), &Metering::default())?;
    let secs = t0.elapsed().as_secs_f64();
    let complete = all.iter().filter(|f| f.missing_intervals == 0).count();
    if all.len() != m || complete != m {
        bail!(
            "daily_for_all gave {} consumers, {complete} complete, of {m}",
            all.len()
        );
    }
    // What run_day takes, as the running system would build it.
    let _usage: Vec<DayUse> = all.iter().map(DayUse::from).collect();
    let rate = m as f64 / secs;
    println!(
        "figures (daily_for_all): {secs:.2} s for {m} consumers, {rate:.0} consumers/s \
         ({:.0} intervals/s); {:.1} s at this rate for {n}",
        (m * 96) as f64 / secs,
        n as f64 / rate
    );
    Ok(())
}
