//! The prepaid engine in the binary, beside the head-end and the API: the utility's rules
//! (`<data dir>/prepaid.json`, defaults otherwise), the tariffs a new data directory starts with,
//! the payment gateway's webhook secret (`<data dir>/gateway.secret`, generated with mode 0600),
//! a look at the disconnection cases and migrations every few seconds, and every hour the daily
//! charge run for the last days from the MDM's figures. `urja pay` is the gateway's stand-in: it
//! signs a payment confirmation with that secret and posts it to the webhook, as a gateway does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, Utc};
use hes::commands::Commands;
use mdm::determinants::{Metering, daily_for_consumer};
use model::Paise;
use prepaid::charging::DayUse;
use prepaid::policy::ist_date;
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
/// How often the cases and migrations are looked at.
const TICK: Duration = Duration::from_secs(15);
/// How often the daily charge run looks for days to charge.
const CHARGE_EVERY: Duration = Duration::from_secs(3600);
/// How many days back the charge run looks (catching up after a stop).
const CHARGE_DAYS_BACK: i64 = 3;

/// The running engine's tasks.
#[derive(Debug)]
pub struct PrepaidTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl PrepaidTasks {
    pub async fn finish(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Loads the rules, seeds the default tariffs into a store that has none, loads (or creates)
/// the gateway secret, and starts the engine's loops until `stop` turns true.
pub async fn start(
    store: Store,
    commands: Commands,
    data_dir: &Path,
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
    let engine = Prepaid::new(store, Some(commands), config);
    let tasks = vec![
        tokio::spawn(look_at_cases(engine.clone(), stopped(stop.clone()))),
        tokio::spawn(charge_days(engine.clone(), stopped(stop))),
    ];
    Ok((engine, secret, PrepaidTasks { tasks }))
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
    if !store.tariff_versions()?.is_empty() {
        return Ok(0);
    }
    let book = TariffBook::from_json(DEFAULT_TARIFFS).context("the default tariffs")?;
    let now = Utc::now();
    for t in &book.versions {
        store.tariff_put(
            &TariffVersion {
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
    let mut every = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = every.tick() => {}
        }
        match engine.tick(Utc::now()).await {
            Ok(r) => {
                if r != Default::default() {
                    tracing::info!(?r, "prepaid cases");
                }
            }
            Err(e) => tracing::warn!(error = %e, "looking at the prepaid cases failed"),
        }
    }
}

/// The day's consumption of a consumer as the MDM has it, once the day is whole (every
/// interval stored, actual or estimated); `None` until then.
pub fn day_use(store: &Store, consumer_no: &str, day: NaiveDate) -> Option<DayUse> {
    match daily_for_consumer(store, consumer_no, day, &Metering::default()) {
        Ok(Some(d)) if d.missing_intervals == 0 && !d.meters.is_empty() => Some(DayUse {
            import_wh: d.figures.import_wh,
            import_vah: d.figures.import_vah,
            estimated: d.estimated,
        }),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(consumer_no, %day, error = %e, "daily consumption unreadable");
            None
        }
    }
}

async fn charge_days(engine: Prepaid, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(CHARGE_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = every.tick() => {}
        }
        let now = Utc::now();
        let today = ist_date(now);
        // Oldest first: a month is charged in order.
        for back in (1..=CHARGE_DAYS_BACK).rev() {
            let day = today - chrono::Duration::days(back);
            let engine = engine.clone();
            let run = tokio::task::spawn_blocking(move || {
                let store = engine.store().clone();
                engine.charge_day(day, now, |c, d| day_use(&store, c, d))
            })
            .await;
            match run {
                Ok(Ok(r)) => {
                    if r.charged_days > 0 || !r.failed.is_empty() {
                        tracing::info!(%day, consumers = r.consumers, charged = r.charged_days, waiting = r.waiting, alerts = r.alerts, failed = r.failed.len(), "daily charge run");
                    }
                    for (consumer, why) in r.failed.iter().take(10) {
                        tracing::warn!(%day, consumer, why, "not charged");
                    }
                }
                Ok(Err(e)) => tracing::warn!(%day, error = %e, "the daily charge run failed"),
                Err(e) => tracing::warn!(%day, error = %e, "the daily charge run panicked"),
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
