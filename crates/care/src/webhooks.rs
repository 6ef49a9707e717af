//! Routed messages delivered to external systems (CIS/CRM, billing, WFM, OMS) as signed HTTP
//! POSTs, so each part of Urja can be replaced by the utility's own.
//!
//! Subscribers are listed in `<data dir>/webhooks.json` (misspelt keys are refused):
//!
//! ```json
//! {"subscribers": [{"name": "oms-main", "destination": "oms",
//!                   "url": "http://10.1.2.3:8080/urja", "secret": "…"}],
//!  "delivery": {"max_attempts": 8, "backoff_s": 30, "poll_ms": 2000, "batch": 100}}
//! ```
//!
//! Each routed message of a subscriber's destination (from the first ever routed) is POSTed
//! as `{"key", "destination", "meter", "routed_at", "payload"}` with
//! `x-urja-signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` ([`model::signature`])
//! and `x-urja-key: <key>`: the key is the message's idempotency key, the same on every retry,
//! so the receiver can drop a second copy. A 2xx answer delivers it; a network error, 408, 429
//! or 5xx is tried again with doubling backoff up to `max_attempts`; another 4xx gives up at
//! once (the error kept). Messages are not ordered: one being retried does not hold up the
//! next.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use store::Store;
use store::webhook::Delivery;

use crate::{CareError, DESTINATIONS};

/// The header with the idempotency key.
pub const KEY_HEADER: &str = "x-urja-key";

/// The file in the data directory.
pub const FILE: &str = "webhooks.json";

/// `webhooks.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub subscribers: Vec<Subscriber>,
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

/// One external system taking one destination's messages.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriber {
    /// Names its delivery state: renaming a subscriber starts it from the first message again.
    pub name: String,
    /// `oms`, `wfm`, `cis`, `crm` or `billing`.
    pub destination: String,
    /// `http://` (this build has no TLS stack: reach HTTPS receivers through a relay).
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("name", &self.name)
            .field("destination", &self.destination)
            .field("url", &self.url)
            .field("secret", &"…")
            .finish()
    }
}

/// The dispatcher's pace and patience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    pub max_attempts: u32,
    /// The first retry waits this long, doubling after each failure.
    pub backoff_s: u32,
    pub poll_ms: u64,
    /// Messages taken in and sent per subscriber and pass.
    pub batch: u32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 8,
            backoff_s: 30,
            poll_ms: 2000,
            batch: 100,
        }
    }
}

impl WebhooksConfig {
    /// Reads and checks a config: unique plain names, known destinations, http URLs, secrets.
    pub fn parse(json: &str) -> Result<Self, CareError> {
        let c: WebhooksConfig =
            serde_json::from_str(json).map_err(|e| CareError::Config(format!("{FILE}: {e}")))?;
        for (i, s) in c.subscribers.iter().enumerate() {
            let bad =
                |why: String| CareError::Config(format!("{FILE}: subscriber {:?}: {why}", s.name));
            if s.name.is_empty()
                || !s
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad("a name is letters, digits, - and _".into()));
            }
            if c.subscribers[..i].iter().any(|o| o.name == s.name) {
                return Err(bad("named twice".into()));
            }
            if !DESTINATIONS.contains(&s.destination.as_str()) {
                return Err(bad(format!("destination is one of {DESTINATIONS:?}")));
            }
            if !s.url.starts_with("http://") {
                return Err(bad("the URL is http:// (no TLS stack in this build)".into()));
            }
            if s.secret.len() < 16 {
                return Err(bad("the secret is at least 16 characters".into()));
            }
        }
        if c.delivery.max_attempts == 0 || c.delivery.batch == 0 {
            return Err(CareError::Config(format!(
                "{FILE}: max_attempts and batch are at least 1"
            )));
        }
        Ok(c)
    }

    /// `<dir>/webhooks.json` if there is one.
    pub fn load(dir: &Path) -> Result<Option<Self>, CareError> {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CareError::Config(format!("{}: {e}", path.display()))),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Why a POST failed, and whether trying again can help.
#[derive(Debug)]
enum Failure {
    Temporary(String),
    Permanent(String),
}

/// Delivers routed messages to the subscribers.
#[derive(Debug, Clone)]
pub struct WebhookDispatcher {
    store: Store,
    config: WebhooksConfig,
    client: reqwest::Client,
}

impl WebhookDispatcher {
    pub fn new(store: Store, config: WebhooksConfig) -> Result<Self, CareError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| CareError::Config(format!("HTTP client: {e}")))?;
        Ok(WebhookDispatcher {
            store,
            config,
            client,
        })
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> store::Result<T> + Send + 'static,
    ) -> store::Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| store::StoreError::Corrupt(format!("webhook task: {e}")))?
    }

    async fn post(&self, s: &Subscriber, d: &Delivery, now: DateTime<Utc>) -> Result<(), Failure> {
        let payload = serde_json::from_str(&d.message.payload)
            .unwrap_or_else(|_| serde_json::Value::String(d.message.payload.clone()));
        let body = json!({
            "key": d.message.key,
            "destination": d.message.destination,
            "meter": d.message.meter.as_str(),
            "routed_at": d.routed_at.to_rfc3339(),
            "payload": payload,
        })
        .to_string();
        let signature = model::signature::sign(s.secret.as_bytes(), body.as_bytes(), now);
        let answer = self
            .client
            .post(&s.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(model::signature::SIGNATURE_HEADER, signature)
            .header(KEY_HEADER, &d.message.key)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Temporary(format!("unreachable: {e}")))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let why = format!("answered {status}");
        if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
            Err(Failure::Temporary(why))
        } else {
            Err(Failure::Permanent(why))
        }
    }

    /// Takes in each subscriber's new messages and sends what is due at `now`.
    pub async fn run_once(&self, now: DateTime<Utc>) -> store::Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        let cfg = self.config.delivery;
        for s in &self.config.subscribers {
            let (name, destination) = (s.name.clone(), s.destination.clone());
            let due = self
                .db(move |st| {
                    st.webhook_take_in(&name, &destination, now, cfg.batch)?;
                    st.webhook_due(&name, now, cfg.batch)
                })
                .await?;
            for d in due {
                let result = self.post(s, &d, now).await;
                let name = s.name.clone();
                let attempts = d.attempts + 1;
                match result {
                    Ok(()) => {
                        self.db(move |st| st.webhook_delivered(&name, d.seq, now))
                            .await?;
                        report.delivered += 1;
                    }
                    Err(failure) => {
                        let (why, retry) = match failure {
                            Failure::Temporary(w) => (w, attempts < cfg.max_attempts),
                            Failure::Permanent(w) => (w, false),
                        };
                        let wait =
                            i64::from(cfg.backoff_s).saturating_mul(1i64 << (attempts - 1).min(16));
                        let retry_at = retry.then(|| now + chrono::Duration::seconds(wait));
                        tracing::warn!(subscriber = %s.name, key = %d.message.key, error = %why, retry, "webhook not delivered");
                        self.db(move |st| st.webhook_failed(&name, d.seq, &why, retry_at))
                            .await?;
                        if retry {
                            report.retrying += 1;
                        } else {
                            report.failed += 1;
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Delivers every `poll_ms` until `stop` completes.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut every =
            tokio::time::interval(Duration::from_millis(self.config.delivery.poll_ms.max(10)));
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = every.tick() => {}
            }
            if let Err(e) = self.run_once(Utc::now()).await {
                tracing::warn!(error = %e, "routed messages could not be delivered");
            }
        }
    }
}
