//! Customer care in the binary, beside the API: the default kinds of service request and
//! natures of complaint seeded into a store that lacks them, and, when the data directory has
//! a `webhooks.json`, the dispatcher delivering routed messages (from the MDM and the care
//! desk) to the external systems listed there (`docs/care.md`).

use std::path::Path;

use anyhow::{Context, Result};
use care::webhooks::{WebhookDispatcher, WebhooksConfig};
use store::Store;
use tokio::sync::watch;

use crate::hes_cli::stopped;

/// Seeds the defaults and starts the webhook dispatcher if `data_dir` configures one.
pub async fn start(
    store: Store,
    data_dir: &Path,
    stop: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let s = store.clone();
    let seeded = tokio::task::spawn_blocking(move || care::catalogue::seed_defaults(&s))
        .await?
        .context("seeding the kinds of service request and natures of complaint")?;
    if seeded > 0 {
        println!("care: {seeded} kinds of service request and natures of complaint seeded");
    }
    let Some(config) = WebhooksConfig::load(data_dir)? else {
        return Ok(None);
    };
    let names: Vec<String> = config
        .subscribers
        .iter()
        .map(|s| format!("{} ({})", s.name, s.destination))
        .collect();
    let dispatcher = WebhookDispatcher::new(store, config)?;
    println!(
        "webhooks: delivering routed messages to {}",
        names.join(", ")
    );
    Ok(Some(tokio::spawn(dispatcher.run(stopped(stop)))))
}
