//! Sending the outbox: SMS through an operator's HTTP API, email through an SMTP relay. A
//! message is marked sent with the provider's id, tried again later on a temporary failure
//! (network, 5xx, SMTP 4xx) with doubling backoff, and given up at once on a permanent one
//! (the operator refuses the number, SMTP 5xx) or after `max_attempts`, the error recorded.
//!
//! The SMS API is the common shape of Indian bulk-SMS gateways: `POST <url>` with an API key
//! header and `{"to", "sender_id", "template_id", "text", "unicode"}`, answering
//! `{"message_id"}`; the template id is the one registered for the message's kind on the DLT
//! platform (TRAI's rules deliver nothing else), and `unicode` is set for a text that is not
//! GSM-7 (Hindi).
//!
//! A channel with neither can be kept in a directory instead ([`Dispatcher::keeping_in`]):
//! each message a text file, `<dir>/<IST date>/<seq>-<channel>.txt`, and marked sent. That is
//! what `urja up` does when nothing is set up.
//!
//! Nothing here logs a message's text; for a message that carries a secret the error recorded
//! and logged is only its kind (an operator's answer may quote the text).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use store::Store;
use store::notify::{Channel, Notification};

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("temporary: {0}")]
    Temporary(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SendError {
    /// The same failure without its detail, for a message that carries a secret.
    fn withheld(self) -> SendError {
        const WHY: &str = "details withheld: the message carries a secret";
        match self {
            SendError::Temporary(_) => SendError::Temporary(WHY.into()),
            SendError::Permanent(_) => SendError::Permanent(WHY.into()),
        }
    }
}

/// How the SMS operator is reached.
#[derive(Clone, Serialize, Deserialize)]
pub struct SmsConfig {
    pub url: String,
    pub api_key: String,
    /// The registered sender id (six letters, e.g. `URJAPW`).
    pub sender_id: String,
    /// DLT template id per kind of notice (`recharge_confirmed`, `low_balance`, …).
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &self.url)
            .field("api_key", &"…")
            .field("sender_id", &self.sender_id)
            .field("templates", &self.templates)
            .finish()
    }
}

/// The SMS operator's API.
#[derive(Debug, Clone)]
pub struct SmsGateway {
    config: SmsConfig,
    client: reqwest::Client,
}

/// The header the API key goes in.
pub const API_KEY_HEADER: &str = "x-api-key";

#[derive(Debug, Serialize, Deserialize)]
pub struct SmsRequest {
    pub to: String,
    pub sender_id: String,
    pub template_id: String,
    pub text: String,
    /// The text is sent as UCS-2 (it is not GSM-7).
    #[serde(default)]
    pub unicode: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SmsAccepted {
    pub message_id: String,
}

impl SmsGateway {
    pub fn new(config: SmsConfig) -> Result<SmsGateway, SendError> {
        if !config.url.starts_with("http://") {
            return Err(SendError::Permanent(format!(
                "SMS operator URL {:?}: only http:// (this build has no TLS stack; reach the \
                 operator through a relay on the utility's network)",
                config.url
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SendError::Permanent(format!("HTTP client: {e}")))?;
        Ok(SmsGateway { config, client })
    }

    /// Sends one SMS; the operator's message id.
    pub async fn send(&self, to: &str, kind: &str, text: &str) -> Result<String, SendError> {
        let template_id = self.config.templates.get(kind).cloned().unwrap_or_default();
        let answer = self
            .client
            .post(&self.config.url)
            .header(API_KEY_HEADER, &self.config.api_key)
            .json(&SmsRequest {
                to: to.to_string(),
                sender_id: self.config.sender_id.clone(),
                template_id,
                text: text.to_string(),
                unicode: crate::sms::encoding(text) == crate::sms::Encoding::Ucs2,
            })
            .send()
            .await
            .map_err(|e| SendError::Temporary(format!("SMS operator unreachable: {e}")))?;
        let status = answer.status();
        if status.is_success() {
            let accepted: SmsAccepted = answer
                .json()
                .await
                .map_err(|e| SendError::Temporary(format!("SMS operator's answer: {e}")))?;
            return Ok(accepted.message_id);
        }
        let body = answer.text().await.unwrap_or_default();
        let why = format!(
            "SMS operator answered {status}: {}",
            body.chars().take(200).collect::<String>()
        );
        if status.is_server_error() || status.as_u16() == 429 {
            Err(SendError::Temporary(why))
        } else {
            Err(SendError::Permanent(why))
        }
    }
}

/// How the SMTP relay is reached (plain SMTP to the utility's relay, which carries mail on).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `Urja <noreply@utility.in>`.
    pub from: String,
}

/// The SMTP relay.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    pub fn new(config: &SmtpConfig) -> Result<SmtpMailer, SendError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| SendError::Permanent(format!("sender {:?}: {e}", config.from)))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(Duration::from_secs(10)))
            .build();
        Ok(SmtpMailer { transport, from })
    }

    /// Sends one email; the relay's answer (its queue id).
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<String, SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| SendError::Permanent(format!("recipient {to:?}: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text_body(body)),
            )
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(response.message().collect::<Vec<_>>().join(" ")),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(SendError::Temporary(format!("SMTP: {e}"))),
        }
    }
}

/// UTF-8 text sent as it is (8BITMIME; lettre makes the line ends CRLF), or encoded by lettre
/// when a line is too long for that.
fn text_body(text: &str) -> Body {
    let lf = text.replace("\r\n", "\n");
    Body::new_with_encoding(lf, ContentTransferEncoding::EightBit).unwrap_or_else(Body::new)
}

/// The dispatcher's pace and patience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DispatchConfig {
    pub max_attempts: u32,
    /// The first retry waits this long, doubling after each failure.
    pub backoff_s: u32,
    /// How often the outbox is looked at.
    pub poll_ms: u64,
    pub batch: u32,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_attempts: 5,
            backoff_s: 30,
            poll_ms: 2000,
            batch: 200,
        }
    }
}

/// What one pass over the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Keeps messages as text files in a directory.
#[derive(Debug, Clone)]
struct Keeper {
    dir: PathBuf,
}

impl Keeper {
    /// Writes `n` to `<dir>/<IST date of now>/<seq>-<channel>.txt` (readable by the owner
    /// only: it may hold a one-time code); its path.
    fn keep(&self, n: &Notification, now: DateTime<Utc>) -> Result<String, SendError> {
        let day = crate::render::ist(now, "%Y-%m-%d");
        let folder = self.dir.join(day);
        let path = folder.join(format!("{:06}-{}.txt", n.seq, n.channel.name()));
        let mut text = format!(
            "To: {}\nKind: {}\nConsumer: {}\nCreated: {}\n",
            n.recipient,
            n.kind,
            n.consumer_no,
            crate::render::ist(n.created_at, "%Y-%m-%dT%H:%M:%S%:z")
        );
        if let Some(subject) = &n.subject {
            text.push_str(&format!("Subject: {subject}\n"));
        }
        text.push('\n');
        text.push_str(&n.body);
        text.push('\n');
        write_private(&folder, &path, text.as_bytes())
            .map_err(|e| SendError::Permanent(format!("keeping in {}: {e}", folder.display())))?;
        Ok(path.display().to_string())
    }
}

fn write_private(folder: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(folder)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Sends the outbox through the channels configured.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    store: Store,
    sms: Option<SmsGateway>,
    email: Option<SmtpMailer>,
    keeper: Option<Keeper>,
    config: DispatchConfig,
}

impl Dispatcher {
    /// Without a channel's adapter its messages are given up at once, with that said (unless
    /// they are kept, [`Dispatcher::keeping_in`]).
    pub fn new(
        store: Store,
        sms: Option<SmsGateway>,
        email: Option<SmtpMailer>,
        config: DispatchConfig,
    ) -> Self {
        Dispatcher {
            store,
            sms,
            email,
            keeper: None,
            config,
        }
    }

    /// Messages of a channel without an adapter are kept as text files under `dir` and marked
    /// sent, their path as the provider's id.
    pub fn keeping_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.keeper = Some(Keeper { dir: dir.into() });
        self
    }

    async fn send(&self, n: &Notification, now: DateTime<Utc>) -> Result<String, SendError> {
        match (n.channel, &self.sms, &self.email, &self.keeper) {
            (Channel::Sms, Some(sms), _, _) => sms.send(&n.recipient, &n.kind, &n.body).await,
            (Channel::Email, _, Some(mail), _) => {
                let subject = n.subject.as_deref().unwrap_or("Urja");
                mail.send(&n.recipient, subject, &n.body).await
            }
            (_, _, _, Some(keeper)) => {
                let (keeper, n) = (keeper.clone(), n.clone());
                tokio::task::spawn_blocking(move || keeper.keep(&n, now))
                    .await
                    .map_err(|e| SendError::Temporary(format!("keeping task: {e}")))?
            }
            (Channel::Sms, None, _, None) => {
                Err(SendError::Permanent("no SMS operator is configured".into()))
            }
            (Channel::Email, _, None, None) => {
                Err(SendError::Permanent("no SMTP relay is configured".into()))
            }
        }
    }

    /// Sends what is due at `now`.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<DispatchReport, store::StoreError> {
        let store = self.store.clone();
        let batch = self.config.batch;
        let due = tokio::task::spawn_blocking(move || store.notifications_due(now, batch))
            .await
            .map_err(|e| store::StoreError::Corrupt(format!("outbox task: {e}")))??;
        let mut report = DispatchReport::default();
        for n in due {
            let result = match self.send(&n, now).await {
                Err(e) if n.sensitive => Err(e.withheld()),
                other => other,
            };
            let store = self.store.clone();
            let config = self.config;
            let outcome = tokio::task::spawn_blocking(move || match result {
                Ok(id) => store.notification_sent(n.seq, &id, now).map(|()| 0),
                Err(e) => {
                    let attempts = n.attempts + 1;
                    let retry = matches!(e, SendError::Temporary(_))
                        && attempts < config.max_attempts;
                    let wait = i64::from(config.backoff_s)
                        .saturating_mul(1i64 << (attempts - 1).min(16));
                    let retry_at = retry.then(|| now + chrono::Duration::seconds(wait));
                    tracing::warn!(seq = n.seq, channel = n.channel.name(), error = %e, retry = retry, "notification not sent");
                    store
                        .notification_failed(n.seq, &e.to_string(), retry_at, now)
                        .map(|()| if retry { 1 } else { 2 })
                }
            })
            .await
            .map_err(|e| store::StoreError::Corrupt(format!("outbox task: {e}")))??;
            match outcome {
                0 => report.sent += 1,
                1 => report.retrying += 1,
                _ => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// Sends the outbox every `poll_ms` until `stop` completes.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut every = tokio::time::interval(Duration::from_millis(self.config.poll_ms.max(10)));
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = every.tick() => {}
            }
            if let Err(e) = self.run_once(Utc::now()).await {
                tracing::warn!(error = %e, "the notification outbox could not be read");
            }
        }
    }
}
