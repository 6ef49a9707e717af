//! The prepaid engine in the binary, beside the head-end and the API: the utility's rules
//! (`<data dir>/prepaid.json`, defaults otherwise), the tariffs a new data directory starts with,
//! the payment gateway's webhook secret (`<data dir>/gateway.secret`, generated with mode 0600),
//! the commands of disconnection cases and migrations followed every 2 s and every short
//! balance looked at every 30 s, every hour the daily
//! charge run for the last days from the MDM's figures, and the dispatcher telling consumers
//! (`<data dir>/notify.json`: the SMS operator and the mail relay; without that file every
//! message is kept as a text file under `<data dir>/outbox/` and listed in the API). `urja pay` is the gateway's stand-in: it
//! signs a payment confirmation with that secret and posts it to the webhook, as a gateway does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{Datelike, NaiveDate, Utc};
use hes::commands::Commands;
use mdm::calendar::ist_date;
use mdm::determinants::{Metering, determinants_for_consumer};
use model::Paise;
use notify::dispatch::{DispatchConfig, Dispatcher, SmsConfig, SmsGateway, SmtpConfig, SmtpMailer};
use notify::standin::{SmsOperator, SmtpSink};
use prepaid::charging::{DayFiguresBook, DayUse};
use prepaid::service::{Prepaid, PrepaidConfig};
use prepaid::tariff::{DEFAULT_TARIFFS, TariffBook};
use store::Store;
use store::prepaid_ops::TariffVersion;
use tokio::sync::watch;

use crate::hes_cli::stopped;

/// The gateway name the webhook is served under.
pub const GATEWAY: &str = "pg";
const SECRET_FILE: &str = "gateway.secret";
const CONFIG_FILE: &str = "prepaid.json";
const NOTIFY_FILE: &str = "notify.json";
/// Where messages are kept when `notify.json` does not say where to send them.
const OUTBOX_DIR: &str = "outbox";
/// How often the commands sent for cases and migrations are followed up.
const FOLLOW: Duration = Duration::from_secs(2);
/// How often every short balance and open case is looked at (in follow-ups).
const FULL_LOOK_EVERY: u32 = 15;
/// How often the daily charge run looks for days to charge.
const CHARGE_EVERY: Duration = Duration::from_secs(3600);
/// How many days back the charge run looks (catching up after a stop, and a month's last days
/// whose figures came late: the next month waits for them).
const CHARGE_DAYS_BACK: i64 = 10;

/// The running engine's tasks (and, for a simulated fleet, the stand-ins it tells consumers
/// through).
#[derive(Debug)]
pub struct PrepaidTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _standins: Option<(SmtpSink, SmsOperator)>,
}

impl PrepaidTasks {
    pub async fn finish(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Loads the rules, seeds the default tariffs into a store that has none, loads (or creates)
/// the gateway secret, and starts the engine's loops and the notification dispatcher until
/// `stop` turns true. With `simulated` consumers (a simulated fleet's), they are given
/// addresses and told through local stand-ins of an SMS operator and a mail relay.
pub async fn start(
    store: Store,
    commands: Commands,
    data_dir: &Path,
    simulated: &[String],
    stop: watch::Receiver<bool>,
) -> Result<(Prepaid, Vec<u8>, PrepaidTasks)> {
    let config = load_config(data_dir)?;
    let seeded = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || seed_tariffs(&store)).await??
    };
    if seeded > 0 {
        println!(
            "prepaid: {seeded} default tariff version(s) stored (replace them through /api/v1/tariffs)"
        );
    }
    let (secret, path, created) = gateway_secret(data_dir)?;
    println!(
        "payment gateway {GATEWAY:?}: confirmations to POST /api/v1/payments/{GATEWAY}/webhook, \
         signed with the secret in {}{}",
        path.display(),
        if created { " (new)" } else { "" }
    );
    let (dispatcher, standins) = if simulated.is_empty() {
        (notify_from_config(&store, data_dir)?, None)
    } else {
        let (dispatcher, standins) = notify_standins(&store, simulated).await?;
        (dispatcher, Some(standins))
    };
    let engine = Prepaid::new(store, Some(commands), config);
    let tasks = vec![
        tokio::spawn(look_at_cases(engine.clone(), stopped(stop.clone()))),
        tokio::spawn(charge_days(engine.clone(), stopped(stop.clone()))),
        tokio::spawn(dispatcher.run(stopped(stop))),
    ];
    Ok((
        engine,
        secret,
        PrepaidTasks {
            tasks,
            _standins: standins,
        },
    ))
}

/// Where notifications go (`<data dir>/notify.json`); without it they are kept in
/// `<data dir>/outbox/`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NotifyFile {
    sms: Option<SmsConfig>,
    smtp: Option<SmtpConfig>,
    dispatch: DispatchConfig,
}

fn notify_from_config(store: &Store, data_dir: &Path) -> Result<Dispatcher> {
    let path = data_dir.join(NOTIFY_FILE);
    let file: NotifyFile = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("reading the notification settings in {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let outbox = data_dir.join(OUTBOX_DIR);
            println!(
                "notifications: SMS and email are kept as files in {} and listed at \
                 /api/v1/notifications (to send them, set up {})",
                outbox.display(),
                path.display()
            );
            return Ok(
                Dispatcher::new(store.clone(), None, None, DispatchConfig::default())
                    .keeping_in(outbox),
            );
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let sms = file
        .sms
        .map(SmsGateway::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("the SMS operator in {}: {e}", path.display()))?;
    let smtp = file
        .smtp
        .as_ref()
        .map(SmtpMailer::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("the mail relay in {}: {e}", path.display()))?;
    println!(
        "notifications: SMS {}, email {} (settings: {})",
        if sms.is_some() { "on" } else { "off" },
        if smtp.is_some() { "on" } else { "off" },
        path.display()
    );
    Ok(Dispatcher::new(store.clone(), sms, smtp, file.dispatch))
}

/// A simulated fleet's consumers get addresses, and their messages go to local stand-ins of an
/// SMS operator and a mail relay (what they received is in `/api/v1/notifications`).
async fn notify_standins(
    store: &Store,
    consumers: &[String],
) -> Result<(Dispatcher, (SmtpSink, SmsOperator))> {
    let sink = SmtpSink::start()
        .await
        .context("starting the SMTP stand-in")?;
    let key = "standin-key";
    let operator = SmsOperator::start(key)
        .await
        .context("starting the SMS operator stand-in")?;
    let sms = SmsGateway::new(SmsConfig {
        url: operator.url(),
        api_key: key.into(),
        sender_id: "URJAPW".into(),
        templates: Default::default(),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let smtp = SmtpMailer::new(&SmtpConfig {
        host: sink.addr().ip().to_string(),
        port: sink.addr().port(),
        from: "Urja <noreply@urja.invalid>".into(),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let contacts: Vec<(String, String, String)> = consumers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                c.clone(),
                format!("+9190{:08}", i % 100_000_000),
                format!("{}@consumers.urja.invalid", c.to_ascii_lowercase()),
            )
        })
        .collect();
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        let now = Utc::now();
        for (c, mobile, email) in &contacts {
            if s.contact(c)?.is_none() {
                s.contact_put(c, Some(mobile), Some(email), now)?;
            }
        }
        Ok::<_, store::StoreError>(())
    })
    .await??;
    println!(
        "notifications: simulated consumers are told through stand-ins (SMS operator {}, \
         mail relay {})",
        operator.url(),
        sink.addr()
    );
    Ok((
        Dispatcher::new(
            store.clone(),
            Some(sms),
            Some(smtp),
            DispatchConfig::default(),
        ),
        (sink, operator),
    ))
}

fn load_config(data_dir: &Path) -> Result<PrepaidConfig> {
    let path = data_dir.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let config: PrepaidConfig = serde_json::from_str(&text)
                .with_context(|| format!("reading the prepaid rules in {}", path.display()))?;
            println!("prepaid: rules from {}", path.display());
            Ok(config)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PrepaidConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Stores the default tariffs when the store has none; how many.
fn seed_tariffs(store: &Store) -> Result<usize> {
    if !store.tariff_versions(Some("prepaid"))?.is_empty() {
        return Ok(0);
    }
    let book = TariffBook::from_json(DEFAULT_TARIFFS).context("the default tariffs")?;
    let now = Utc::now();
    for t in &book.versions {
        store.tariff_put(
            &TariffVersion {
                scheme: "prepaid".into(),
                category: t.category.clone(),
                effective_from: t.effective_from,
                code: t.code.clone(),
                body: serde_json::to_string(t)?,
                created_by: "urja defaults".into(),
                created_at: now,
            },
            ist_date(now),
        )?;
    }
    Ok(book.versions.len())
}

/// The webhook secret: read from the file, or 32 random bytes written to it (mode 0600).
fn gateway_secret(data_dir: &Path) -> Result<(Vec<u8>, PathBuf, bool)> {
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = text.trim().as_bytes().to_vec();
            if secret.len() < 32 {
                bail!("{} holds fewer than 32 characters", path.display());
            }
            Ok((secret, path, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
            let text = hex::encode(bytes);
            write_private(&path, text.as_bytes())?;
            Ok((text.into_bytes(), path, true))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

async fn look_at_cases(engine: Prepaid, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(FOLLOW);
    let mut n: u32 = 0;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = every.tick() => {}
        }
        let look = if n.is_multiple_of(FULL_LOOK_EVERY) {
            engine.tick(Utc::now()).await
        } else {
            engine.follow_commands(Utc::now()).await
        };
        n = n.wrapping_add(1);
        match look {
            Ok(r) => {
                if r != Default::default() {
                    tracing::info!(?r, "prepaid cases");
                }
            }
            Err(e) => tracing::warn!(error = %e, "looking at the prepaid cases failed"),
        }
    }
}

/// Charges every prepaid consumer through `yesterday`: the figures of the days some wallet
/// still needs (from the earliest day a wallet of this month or the last is behind, at least
/// the last ten days) read first, then the month before finished (if a wallet is still in it)
/// and this month charged. What was done, a line per run.
pub fn charge_through_yesterday(
    engine: &Prepaid,
    yesterday: NaiveDate,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<String>> {
    let store = engine.store();
    let month = yesterday.with_day(1).unwrap_or(yesterday);
    let window = yesterday - chrono::Duration::days(CHARGE_DAYS_BACK - 1);
    let from = store
        .wallets_behind(month)?
        .map_or(window, |d| d.min(window));
    let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= yesterday).collect();
    let figures = DayFiguresBook::load(store, days, &Metering::default())?;
    let mut until = vec![yesterday];
    if from < month {
        until.insert(0, month.pred_opt().unwrap_or(month));
    }
    let mut lines = Vec::new();
    for day in until {
        let r = engine.charge_day(day, now, &figures)?;
        if r.charged_days > 0 || !r.failed.is_empty() {
            lines.push(format!(
                "daily charge run through {day}: {} consumer(s), {} day(s) charged, {} waiting for figures, {} alert(s), {} failed{}",
                r.consumers,
                r.charged_days,
                r.waiting,
                r.alerts,
                r.failed.len(),
                r.failed.first().map_or(String::new(), |(c, why)| format!(" (first: {c}: {why})"))
            ));
        }
    }
    Ok(lines)
}

/// One consumer's day with its TOD split, once the day is whole (for the true-up, which
/// looks at few consumers).
fn consumer_day(store: &Store, consumer_no: &str, day: NaiveDate) -> Option<DayUse> {
    let (start, end) = mdm::calendar::day_bounds(day);
    let d =
        determinants_for_consumer(store, consumer_no, start, end, &Metering::default()).ok()??;
    // Whole: every interval stored (suspect ones count as stored, as the daily figures have it).
    let missing = d
        .missing_intervals
        .saturating_sub(d.figures.suspect_intervals);
    if missing > 0 || d.meters.is_empty() {
        return None;
    }
    Some(DayUse {
        import_wh: d.figures.import_wh,
        import_vah: d.figures.import_vah,
        zone_wh: d.zone_import_wh,
        zone_vah: d.zone_import_vah,
        estimated: d.estimated_intervals > 0,
    })
}

async fn charge_days(engine: Prepaid, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(CHARGE_EVERY);
    let mut trued_up: Option<NaiveDate> = None;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = every.tick() => {}
        }
        let now = Utc::now();
        let today = ist_date(now);
        let yesterday = today - chrono::Duration::days(1);
        let engine_c = engine.clone();
        let run = tokio::task::spawn_blocking(move || {
            charge_through_yesterday(&engine_c, yesterday, now)
        })
        .await;
        match run {
            Ok(Ok(lines)) => {
                for line in lines {
                    tracing::info!("{line}");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "the daily charge run failed"),
            Err(e) => tracing::warn!(error = %e, "the daily charge run panicked"),
        }
        // Once a day: the month so far re-charged where estimates have been replaced.
        if trued_up != Some(today) {
            trued_up = Some(today);
            let yesterday = today - chrono::Duration::days(1);
            let engine = engine.clone();
            let run = tokio::task::spawn_blocking(move || {
                let store = engine.store().clone();
                engine.true_up(yesterday, now, |c, d| consumer_day(&store, c, d))
            })
            .await;
            match run {
                Ok(Ok((adjusted, failed))) => {
                    if adjusted > 0 || !failed.is_empty() {
                        tracing::info!(
                            adjusted,
                            failed = failed.len(),
                            "true-up of estimated days"
                        );
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "the true-up failed"),
                Err(e) => tracing::warn!(error = %e, "the true-up panicked"),
            }
        }
    }
}

/// Moves every simulated consumer that is not prepaid yet to prepaid (use case 13, through the
/// head-end) with `opening` as the opening balance.
pub async fn migrate_simulated(engine: &Prepaid, consumers: &[String], opening: Paise) -> usize {
    let mut started = 0;
    for c in consumers {
        let store = engine.store().clone();
        let key = c.clone();
        let known = tokio::task::spawn_blocking(move || store.prepaid_account(&key))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .is_some();
        if known {
            continue;
        }
        match engine
            .start_migration(c, true, opening, "urja up --simulate", Utc::now())
            .await
        {
            Ok(_) => started += 1,
            Err(e) => tracing::warn!(consumer = c, error = %e, "not moved to prepaid"),
        }
    }
    started
}

/// `urja pay`: the payment gateway's stand-in.
#[derive(Debug, Clone, clap::Args)]
pub struct PayArgs {
    #[command(flatten)]
    pub data: crate::hes_cli::DataArgs,
    /// The consumer number paid for.
    #[arg(long)]
    pub consumer: String,
    /// Rupees, e.g. 500 or 499.50.
    #[arg(long, value_parser = Paise::parse_rupees)]
    pub amount: Paise,
    /// The gateway's payment id (default: a new one). The same id again is a replayed
    /// confirmation.
    #[arg(long)]
    pub id: Option<String>,
    /// Where the API listens.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
}

/// Signs a payment confirmation with the data directory's gateway secret and posts it to the
/// webhook, as the gateway does when a payment is captured; prints the answer.
pub async fn pay(args: PayArgs) -> Result<()> {
    let path = args.data.data.join(SECRET_FILE);
    let secret = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the gateway secret in {} (run `urja up` first)",
            path.display()
        )
    })?;
    let now = Utc::now();
    let id = args.id.unwrap_or_else(|| {
        let mut bytes = [0u8; 8];
        let _ = getrandom::fill(&mut bytes);
        format!("pay_{}", hex::encode(bytes))
    });
    let body = serde_json::to_vec(&prepaid::gateway::WebhookBody {
        event: "payment.captured".into(),
        payment: prepaid::gateway::WebhookPayment {
            id: id.clone(),
            amount: args.amount.0,
            currency: "INR".into(),
            consumer_no: args.consumer.clone(),
            captured_at: now,
        },
    })?;
    let signature = prepaid::gateway::sign(secret.trim().as_bytes(), &body, now);
    let url = format!(
        "{}/api/v1/payments/{GATEWAY}/webhook",
        args.api.trim_end_matches('/')
    );
    let answer = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?
        .post(&url)
        .header(prepaid::gateway::SIGNATURE_HEADER, signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("posting to {url}"))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    println!(
        "payment {id} of {} for {}: HTTP {status} {text}",
        args.amount, args.consumer
    );
    if !status.is_success() {
        bail!("the webhook refused the confirmation");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{IntervalReading, MeterSerial, Quality};
    use store::mdm::{Consumer, ServicePoint};
    use store::{IngestWrite, IntervalWrite};

    fn ist(s: &str) -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(&format!("{s}+05:30"))
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A day of 15-minute intervals of `wh` each, estimated or read.
    fn day(store: &Store, meter: &MeterSerial, date: &str, wh: i64, estimated: bool) {
        let start = ist(&format!("{date}T00:00:00"));
        let rows = (0..96i64)
            .map(|i| IntervalWrite::New {
                reading: IntervalReading {
                    meter: meter.clone(),
                    interval_end: start + chrono::Duration::minutes(15 * (i + 1)),
                    avg_voltage_v: None,
                    avg_current_a: None,
                    avg_phase_voltage_v: None,
                    avg_phase_current_a: None,
                    import_wh: wh,
                    import_vah: wh,
                    export_wh: None,
                    export_vah: None,
                    quality: if estimated {
                        vec![Quality::Estimated]
                    } else {
                        vec![]
                    },
                },
                method: estimated.then(|| "like_day".to_string()),
            })
            .collect();
        store
            .mdm_write(
                &IngestWrite {
                    intervals: rows,
                    ..IngestWrite::default()
                },
                start,
            )
            .unwrap();
    }

    /// The run as `urja up` makes it, from the MDM's intervals in the same store: the figures
    /// are read before the charge transactions (reading them inside would wait for ever on the
    /// store's one connection), and the true-up re-charges an estimated day once its actual
    /// reading replaced it.
    #[test]
    fn the_hourly_run_charges_from_the_store_and_trues_up_an_estimate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
        let at = ist("2026-11-01T00:00:00");
        store
            .mdm_put_consumer(
                &Consumer {
                    consumer_no: "C-1".into(),
                    name: "Asha".into(),
                    category: "residential".into(),
                    net_metered: false,
                },
                at,
            )
            .unwrap();
        store
            .mdm_put_service_point(&ServicePoint {
                id: "SP-1".into(),
                address: "1 Mall Road".into(),
                sanctioned_load_w: 2000,
            })
            .unwrap();
        store.mdm_connect_consumer("SP-1", "C-1", at).unwrap();
        let meter = MeterSerial::new("M-1").unwrap();
        store.mdm_install_meter(&meter, "SP-1", at).unwrap();
        assert_eq!(seed_tariffs(&store).unwrap(), 4);
        store.prepaid_enrol("C-1", at, None).unwrap();
        day(&store, &meter, "2026-12-01", 50, false);
        day(&store, &meter, "2026-12-02", 50, true);
        let engine = Prepaid::new(store.clone(), None, PrepaidConfig::default());
        let dec = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let now = ist("2026-12-03T06:00:00");
        let lines = charge_through_yesterday(&engine, dec(2), now).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("2 day(s) charged"), "{lines:?}");
        assert_eq!(
            store.wallets_with_estimates(dec(1), "", 10).unwrap(),
            ["C-1"]
        );
        let before = store.wallet_balance("C-1").unwrap().unwrap();
        // The actual reading of the 2nd replaces the estimate: 75 Wh an interval, not 50.
        let replaced: Vec<IntervalWrite> = store
            .mdm_intervals(
                &meter,
                ist("2026-12-02T00:00:00"),
                ist("2026-12-03T00:00:00"),
            )
            .unwrap()
            .into_iter()
            .filter(|s| s.reading.interval_end > ist("2026-12-02T00:00:00"))
            .map(|s| IntervalWrite::Replace {
                reading: IntervalReading {
                    import_wh: 75,
                    import_vah: 75,
                    quality: vec![],
                    ..s.reading
                },
                method: None,
                version: s.version,
            })
            .collect();
        assert_eq!(replaced.len(), 96);
        store
            .mdm_write(
                &IngestWrite {
                    intervals: replaced,
                    ..IngestWrite::default()
                },
                now,
            )
            .unwrap();
        let (adjusted, failed) = engine
            .true_up(dec(2), now, |c, d| consumer_day(&store, c, d))
            .unwrap();
        assert_eq!((adjusted, failed.len()), (1, 0), "{failed:?}");
        assert!(store.wallet_balance("C-1").unwrap().unwrap() < before);
        assert!(
            store
                .wallets_with_estimates(dec(1), "", 10)
                .unwrap()
                .is_empty()
        );
        assert!(store.wallet_check("C-1").unwrap());
    }
}
