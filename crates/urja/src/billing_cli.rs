//! Postpaid billing in the binary, beside the API: the postpaid tariffs a new data directory
//! starts with, a simulated fleet's postpaid consumers put in cycle 1, and every billing cycle
//! run at start and every six hours (a period is billed once its end has passed; a run on
//! unchanged figures issues nothing, one on changed figures a revision). Before each run the
//! head-end is asked for the billing profile rows the cycles lack (use case 2.1); when it was,
//! the cycles run again five minutes later to bill from them.

use std::time::Duration;

use anyhow::{Context, Result};
use billing::bill::PostpaidTariff;
use billing::cycle::{DEFAULT_POSTPAID_TARIFFS, PostpaidBook, billing_reads_wanted, run_cycle};
use chrono::Utc;
use hes::commands::Commands;
use mdm::calendar::ist_date;
use mdm::determinants::Metering;
use model::Paise;
use model::{CommandId, CommandKind, CommandRequest};
use store::Store;
use store::billing::BillingAccount;
use store::prepaid_ops::TariffVersion;
use tokio::sync::watch;

use crate::hes_cli::stopped;

/// How often every cycle is run.
const RUN_EVERY: Duration = Duration::from_secs(6 * 3600);
/// After billing profile reads were asked for, the cycles are run again this soon, to bill
/// from the rows that came in.
const RUN_AFTER_READS: Duration = Duration::from_secs(5 * 60);

/// Seeds the postpaid tariffs into a store that has none, puts the `postpaid` consumers (a
/// simulated fleet's) in cycle 1, and runs the cycles until `stop` turns true.
pub async fn start(
    store: Store,
    commands: Commands,
    postpaid: &[String],
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let postpaid = postpaid.to_vec();
    let s = store.clone();
    let seeded = tokio::task::spawn_blocking(move || -> Result<usize> {
        let now = Utc::now();
        for c in &postpaid {
            s.billing_account_put(
                &BillingAccount {
                    consumer_no: c.clone(),
                    cycle_day: 1,
                    contract_demand: None,
                    opening_arrears: Paise::ZERO,
                    billed_from: None,
                    closed_on: None,
                },
                now,
            )?;
        }
        if !s.tariff_versions(Some("postpaid"))?.is_empty() {
            return Ok(0);
        }
        let book: Vec<PostpaidTariff> =
            serde_json::from_str(DEFAULT_POSTPAID_TARIFFS).context("the default tariffs")?;
        for t in &book {
            t.base.check()?;
            s.tariff_put(
                &TariffVersion {
                    scheme: "postpaid".into(),
                    category: t.base.category.clone(),
                    effective_from: t.base.effective_from,
                    code: t.base.code.clone(),
                    body: serde_json::to_string(t)?,
                    created_by: "urja defaults".into(),
                    created_at: now,
                },
                ist_date(now),
            )?;
        }
        Ok(book.len())
    })
    .await??;
    if seeded > 0 {
        println!(
            "billing: {seeded} default postpaid tariff version(s) stored (replace them through \
             /api/v1/tariffs?scheme=postpaid)"
        );
    }
    Ok(tokio::spawn(run_cycles(store, commands, stopped(stop))))
}

/// The monthly trigger (use case 2.1): asks the head-end for the billing profile rows the
/// cycles lack; how many reads were newly asked for.
async fn ask_for_billing_rows(store: &Store, commands: &Commands) -> Result<usize, String> {
    let s = store.clone();
    let wanted = tokio::task::spawn_blocking(move || {
        let today = ist_date(Utc::now());
        let mut all = Vec::new();
        for day in 1..=28u8 {
            all.extend(billing_reads_wanted(&s, day, today).map_err(|e| e.to_string())?);
        }
        Ok::<_, String>(all)
    })
    .await
    .map_err(|e| e.to_string())??;
    let mut asked = 0;
    for read in wanted {
        let submitted = commands
            .submit(CommandRequest {
                // One read per meter and period, however often the cycles run.
                id: CommandId(format!("billing-read/{}/{}", read.period_from, read.meter)),
                meter: read.meter.clone(),
                kind: CommandKind::ReadBilling {
                    from: read.from,
                    to: read.to,
                },
                requested_by: "billing".into(),
                batch: None,
            })
            .await;
        match submitted {
            Ok(s) => asked += usize::from(s.created),
            Err(e) => {
                tracing::warn!(meter = %read.meter, error = %e, "billing profile read not sent")
            }
        }
    }
    Ok(asked)
}

async fn run_cycles(store: Store, commands: Commands, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = match ask_for_billing_rows(&store, &commands).await {
            Ok(0) => RUN_EVERY,
            Ok(asked) => {
                tracing::info!(
                    asked,
                    "billing: billing profile reads asked of the head-end"
                );
                RUN_AFTER_READS
            }
            Err(e) => {
                tracing::warn!(error = %e, "billing: the billing profile reads were not asked for");
                RUN_EVERY
            }
        };
        let store = store.clone();
        let run = tokio::task::spawn_blocking(move || -> Result<Vec<String>, String> {
            let book = PostpaidBook::from_store(&store)?;
            let today = ist_date(Utc::now());
            let mut lines = Vec::new();
            for day in 1..=28u8 {
                let r = run_cycle(&store, &book, day, today, &Metering::default())
                    .map_err(|e| e.to_string())?;
                if r.new + r.revised > 0 || !r.failed.is_empty() {
                    lines.push(format!(
                        "billing cycle {day}: {} consumer(s), {} new bill(s), {} revised, {} \
                         provisional, {} failed",
                        r.consumers,
                        r.new,
                        r.revised,
                        r.provisional,
                        r.failed.len()
                    ));
                }
            }
            Ok(lines)
        })
        .await;
        match run {
            Ok(Ok(lines)) => {
                for l in lines {
                    tracing::info!("{l}");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "the billing cycles failed"),
            Err(e) => tracing::warn!(error = %e, "the billing cycles panicked"),
        }
    }
}
