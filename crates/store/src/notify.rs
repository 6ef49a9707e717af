//! Notifications to consumers (migrations `0006_notify`, `0013_portal`): their addresses and
//! language (`consumer_contact`), the outbox of SMS and email (`notification`), one row per
//! notice and channel, written once per consumer and key, sent by the dispatcher with retries,
//! and every attempt at it (`notification_attempt`). A message that carries a secret (a
//! one-time code, a password) is `sensitive`: its body is blanked once it is delivered or given
//! up, and its `Debug` never shows it.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{Result, Store, StoreError, from_ms, from_ms_opt, ms, narrow};

/// Where a consumer is told things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub consumer_no: String,
    /// `+91` and ten digits.
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub language: Language,
    pub updated_at: DateTime<Utc>,
}

/// The language a consumer is told things in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Language {
    #[default]
    English,
    Hindi,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::English, Language::Hindi];

    /// The ISO 639-1 code, as stored and in the API: `en`, `hi`.
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Hindi => "hi",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.code() == code)
    }
}

/// A channel of the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Channel> {
        match s {
            "sms" => Ok(Channel::Sms),
            "email" => Ok(Channel::Email),
            other => Err(StoreError::Corrupt(format!("channel {other}"))),
        }
    }
}

/// A message to write to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification<'a> {
    pub key: &'a str,
    pub channel: Channel,
    pub consumer_no: &'a str,
    pub kind: &'a str,
    pub recipient: &'a str,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    /// The body carries a secret (see the module's notes).
    pub sensitive: bool,
}

/// What a blanked body of a sensitive message reads.
pub const WITHHELD: &str = "(withheld: this message carried a one-time code or a password)";

/// A message in the outbox.
#[derive(Clone, PartialEq, Eq)]
pub struct Notification {
    pub seq: u64,
    pub key: String,
    pub channel: Channel,
    pub consumer_no: String,
    pub kind: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub body: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The SMS operator's message id, or the SMTP server's answer.
    pub provider_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub sensitive: bool,
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("seq", &self.seq)
            .field("key", &self.key)
            .field("channel", &self.channel)
            .field("consumer_no", &self.consumer_no)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("sensitive", &self.sensitive)
            .field(
                "body",
                if self.sensitive {
                    &WITHHELD
                } else {
                    &self.body
                },
            )
            .finish_non_exhaustive()
    }
}

/// One attempt to deliver a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// 1 for the first.
    pub attempt: u32,
    pub at: DateTime<Utc>,
    /// `sent`, `retry` (a temporary failure, tried again later) or `failed` (given up).
    pub outcome: String,
    /// The provider's id when sent, the error otherwise.
    pub detail: String,
}

const COLUMNS: &str = "seq, key, channel, consumer_no, kind, recipient, subject, body, state, \
     attempts, next_attempt_at, last_error, provider_id, created_at, sent_at, sensitive";

fn notification(r: &Row<'_>) -> Result<Notification> {
    Ok(Notification {
        seq: narrow(r.get(0)?, "notification seq")?,
        key: r.get(1)?,
        channel: Channel::parse(&r.get::<_, String>(2)?)?,
        consumer_no: r.get(3)?,
        kind: r.get(4)?,
        recipient: r.get(5)?,
        subject: r.get(6)?,
        body: r.get(7)?,
        state: r.get(8)?,
        attempts: narrow(r.get(9)?, "attempts")?,
        next_attempt_at: from_ms(r.get(10)?)?,
        last_error: r.get(11)?,
        provider_id: r.get(12)?,
        created_at: from_ms(r.get(13)?)?,
        sent_at: from_ms_opt(r.get(14)?)?,
        sensitive: r.get(15)?,
    })
}

/// An Indian mobile number as SMS gateways take it: `+91` and ten digits starting 6–9.
pub fn valid_mobile(s: &str) -> bool {
    s.strip_prefix("+91").is_some_and(|d| {
        d.len() == 10
            && d.bytes().all(|b| b.is_ascii_digit())
            && matches!(d.as_bytes()[0], b'6'..=b'9')
    })
}

/// A plausible email address: one `@`, something before it, a dotted domain after, no spaces
/// or angle brackets (which would break an SMTP command).
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

impl Store {
    /// Sets a consumer's addresses (either may be `None`), checked.
    pub fn contact_put(
        &self,
        consumer_no: &str,
        mobile: Option<&str>,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        put_contact(&self.conn(), consumer_no, mobile, email, now)
    }

    /// `Invalid` unless the mobile is +91 and ten digits and the email an address.
    pub fn contact_check(&self, mobile: Option<&str>, email: Option<&str>) -> Result<()> {
        check_contact(mobile, email)
    }

    /// Sets the language a consumer is told things in; a consumer without addresses recorded
    /// is [`StoreError::NotFound`].
    pub fn contact_set_language(
        &self,
        consumer_no: &str,
        language: Language,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE consumer_contact SET language = ?2, updated_at = ?3 WHERE consumer_no = ?1",
            params![consumer_no, language.code(), ms(now)],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "no contact recorded for {consumer_no}"
            )));
        }
        Ok(())
    }

    pub fn contact(&self, consumer_no: &str) -> Result<Option<Contact>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT mobile, email, updated_at, language FROM consumer_contact \
             WHERE consumer_no = ?1",
        )?;
        stmt.query_row(params![consumer_no], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?
        .map(|(mobile, email, at, language)| {
            Ok(Contact {
                consumer_no: consumer_no.to_string(),
                mobile,
                email,
                language: Language::from_code(&language)
                    .ok_or_else(|| StoreError::Corrupt(format!("language {language:?}")))?,
                updated_at: from_ms(at)?,
            })
        })
        .transpose()
    }

    /// Writes a message to the outbox, once per (consumer, key, channel); false if it was
    /// there.
    pub fn notification_put(&self, n: &NewNotification<'_>, now: DateTime<Utc>) -> Result<bool> {
        Ok(self.conn().execute(
            "INSERT INTO notification (key, channel, consumer_no, kind, recipient, subject, body, \
             state, next_attempt_at, created_at, sensitive) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?9) \
             ON CONFLICT (consumer_no, key, channel) DO NOTHING",
            params![
                n.key,
                n.channel.name(),
                n.consumer_no,
                n.kind,
                n.recipient,
                n.subject,
                n.body,
                ms(now),
                n.sensitive
            ],
        )? == 1)
    }

    /// Pending messages due at `now`, oldest first.
    pub fn notifications_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Notification>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notification WHERE state = 'pending' \
             AND next_attempt_at <= ?1 ORDER BY next_attempt_at, seq LIMIT ?2"
        ))?;
        let mut rows = stmt.query(params![ms(now), limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(notification(r)?);
        }
        Ok(out)
    }

    /// Marks a message sent at `now`, with the provider's id for it.
    pub fn notification_sent(&self, seq: u64, provider_id: &str, now: DateTime<Utc>) -> Result<()> {
        self.notification_attempted(seq, now, "sent", provider_id, None)
    }

    /// Records a failed attempt at `now`: tried again at `retry_at`, or given up (`None`).
    pub fn notification_failed(
        &self,
        seq: u64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let outcome = if retry_at.is_some() {
            "retry"
        } else {
            "failed"
        };
        self.notification_attempted(seq, now, outcome, error, retry_at)
    }

    /// One attempt's record and its effect on the message, in one transaction. A sensitive
    /// body is blanked unless the message is tried again.
    fn notification_attempted(
        &self,
        seq: u64,
        now: DateTime<Utc>,
        outcome: &str,
        detail: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let seq = i64::try_from(seq).map_err(|_| StoreError::NotFound(format!("message {seq}")))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx
            .prepare_cached(&format!(
                "UPDATE notification SET attempts = attempts + 1, \
                 state = CASE ?4 WHEN 'retry' THEN 'pending' ELSE ?4 END, \
                 sent_at = CASE ?4 WHEN 'sent' THEN ?2 ELSE sent_at END, \
                 provider_id = CASE ?4 WHEN 'sent' THEN ?3 ELSE provider_id END, \
                 last_error = CASE ?4 WHEN 'sent' THEN NULL ELSE ?3 END, \
                 next_attempt_at = COALESCE(?5, next_attempt_at), \
                 body = CASE WHEN sensitive = 1 AND ?4 <> 'retry' THEN '{WITHHELD}' ELSE body END \
                 WHERE seq = ?1"
            ))?
            .execute(params![seq, ms(now), detail, outcome, retry_at.map(ms)])?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("message {seq}")));
        }
        tx.prepare_cached(
            "INSERT INTO notification_attempt (seq, attempt, at, outcome, detail) \
             SELECT seq, attempts, ?2, ?3, ?4 FROM notification WHERE seq = ?1",
        )?
        .execute(params![seq, ms(now), outcome, detail])?;
        tx.commit()?;
        Ok(())
    }

    /// One message, or `None`.
    pub fn notification(&self, seq: u64) -> Result<Option<Notification>> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notification WHERE seq = ?1"
        ))?;
        let mut rows = stmt.query(params![seq])?;
        rows.next()?.map(notification).transpose()
    }

    /// Every attempt to deliver message `seq`, first first.
    pub fn notification_attempts(&self, seq: u64) -> Result<Vec<DeliveryAttempt>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT attempt, at, outcome, detail FROM notification_attempt WHERE seq = ?1 \
             ORDER BY attempt",
        )?;
        let mut rows = stmt.query(params![i64::try_from(seq).unwrap_or(-1)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(DeliveryAttempt {
                attempt: narrow(r.get(0)?, "attempt")?,
                at: from_ms(r.get(1)?)?,
                outcome: r.get(2)?,
                detail: r.get(3)?,
            });
        }
        Ok(out)
    }

    /// Messages after `after_seq`, oldest first, optionally one consumer's or in one state.
    pub fn notifications(
        &self,
        consumer_no: Option<&str>,
        state: Option<&str>,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notification WHERE seq > ?1 \
             AND (?2 IS NULL OR consumer_no = ?2) AND (?3 IS NULL OR state = ?3) \
             ORDER BY seq LIMIT ?4"
        ))?;
        let mut rows = stmt.query(params![
            i64::try_from(after_seq).unwrap_or(i64::MAX),
            consumer_no,
            state,
            limit
        ])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(notification(r)?);
        }
        Ok(out)
    }
}

/// [`Store::contact_put`] on `conn` (inside a caller's transaction, e.g. a service request's
/// resolution).
fn check_contact(mobile: Option<&str>, email: Option<&str>) -> Result<()> {
    if let Some(m) = mobile.filter(|m| !valid_mobile(m)) {
        return Err(StoreError::Invalid(format!(
            "mobile {m:?} is not +91 and ten digits"
        )));
    }
    if let Some(e) = email.filter(|e| !valid_email(e)) {
        return Err(StoreError::Invalid(format!(
            "email {e:?} is not an address"
        )));
    }
    Ok(())
}

pub(crate) fn put_contact(
    conn: &Connection,
    consumer_no: &str,
    mobile: Option<&str>,
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    check_contact(mobile, email)?;
    conn.execute(
        "INSERT INTO consumer_contact (consumer_no, mobile, email, updated_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (consumer_no) DO UPDATE SET \
         mobile = excluded.mobile, email = excluded.email, updated_at = excluded.updated_at",
        params![consumer_no, mobile, email, ms(now)],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert!(valid_mobile("+919876543210"));
        for bad in [
            "9876543210",
            "+91987654321",
            "+915876543210",
            "+91987654321x",
            "",
        ] {
            assert!(!valid_mobile(bad), "{bad}");
        }
        assert!(valid_email("asha@example.in"));
        for bad in [
            "asha",
            "@example.in",
            "asha@",
            "asha@example",
            "a b@x.in",
            "a@x.in>",
            "a@b@c.in",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
