//! The consumer portal (migration `0013_portal`): registration by a one-time code (use case
//! 15), accounts and sessions.
//!
//! The store keeps the state and applies the limits atomically; it never sees a code, a
//! password or a session secret, only their hashes (made by the caller: Argon2 for codes and
//! passwords, SHA-256 for the full-entropy session secrets).
//!
//! - A **challenge** is made for every registration request, matched or not
//!   (`consumer_no` is `None` when the consumer number and the address did not match: nothing
//!   is sent and no code verifies), so what the caller sees never tells which numbers exist.
//!   Codes sent to one consumer number and address are limited per hour, a resend waits a
//!   while, a code expires, and each guess is counted *before* it is checked, so no more than
//!   `max_code_attempts` guesses are ever checked, however many arrive at once.
//! - An **account** is made (or, on a new registration, reset) when a code verifies: the login
//!   id, the hash of a default password that must be changed before anything else, and the
//!   failed logins; after `max_failed_logins` in a row it is locked for `lockout`. A login is
//!   counted before it is checked, like a code.
//! - A **session** is a logged-in consumer, by the SHA-256 of its secret.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{OptionalExtension, Row, params};

use crate::notify::Channel;
use crate::{Result, Store, StoreError, from_ms, from_ms_opt, ms, narrow};

/// The portal's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalRules {
    /// How long a code is good for (from its last sending).
    pub code_ttl: Duration,
    /// Guesses at one challenge's code, then it is dead.
    pub max_code_attempts: u32,
    /// How long after a sending a resend is allowed.
    pub resend_after: Duration,
    /// Codes sent to one consumer number and address in an hour (first sends and resends).
    pub sends_per_hour: u32,
    /// Failed logins in a row before the account is locked …
    pub max_failed_logins: u32,
    /// … for this long.
    pub lockout: Duration,
    /// How long a session lasts.
    pub session_ttl: Duration,
}

impl Default for PortalRules {
    fn default() -> Self {
        PortalRules {
            code_ttl: Duration::minutes(10),
            max_code_attempts: 5,
            resend_after: Duration::seconds(60),
            sends_per_hour: 5,
            max_failed_logins: 5,
            lockout: Duration::minutes(15),
            session_ttl: Duration::hours(12),
        }
    }
}

/// A registration request's challenge, to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChallenge<'a> {
    pub id: &'a str,
    pub asked_no: &'a str,
    pub address: &'a str,
    pub channel: Channel,
    /// The consumer, when the number and the address matched.
    pub consumer_no: Option<&'a str>,
    pub code_hash: &'a str,
}

/// A stored challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    pub id: String,
    pub asked_no: String,
    pub address: String,
    pub channel: Channel,
    pub consumer_no: Option<String>,
    pub code_hash: String,
    /// `open`, `verified` or `dead`.
    pub state: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub sent_at: DateTime<Utc>,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("matched", &self.consumer_no.is_some())
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Challenge {
    /// When a resend is allowed.
    pub fn resend_at(&self, rules: &PortalRules) -> DateTime<Utc> {
        self.sent_at + rules.resend_after
    }
}

/// What became of a request to send a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sending {
    /// Stored (and, if matched, to be sent).
    Sent(Challenge),
    /// Too soon after the last sending, or too many in the hour: not before `until`.
    TooSoon { until: DateTime<Utc> },
    /// No such challenge, or it is verified, dead or expired (a resend cannot revive it).
    Closed,
}

/// Whether a guess at a code may be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guess {
    /// Counted: check it against this challenge's hash.
    Check(Challenge),
    /// No such challenge, expired, verified, or out of guesses.
    Closed,
}

/// A consumer's portal account.
#[derive(Clone, PartialEq, Eq)]
pub struct PortalAccount {
    pub consumer_no: String,
    pub login_id: String,
    pub password_hash: String,
    /// The password is still the default one sent at registration.
    pub must_change: bool,
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

impl std::fmt::Debug for PortalAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalAccount")
            .field("consumer_no", &self.consumer_no)
            .field("login_id", &self.login_id)
            .field("must_change", &self.must_change)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// Whether a login may be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginGate {
    /// Counted as a failure until [`Store::portal_login_succeeded`] says otherwise.
    Check(PortalAccount),
    Unknown,
    Locked {
        until: DateTime<Utc>,
    },
}

/// A session to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub token_hash: [u8; 32],
    pub consumer_no: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A stored session, with its account's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub id: String,
    pub consumer_no: String,
    pub login_id: String,
    pub must_change: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl PortalSession {
    /// Neither revoked nor expired at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

const CHALLENGE_COLUMNS: &str = "id, asked_no, address, channel, consumer_no, code_hash, state, \
     attempts, created_at, expires_at, sent_at";

fn challenge(r: &Row<'_>) -> Result<Challenge> {
    Ok(Challenge {
        id: r.get(0)?,
        asked_no: r.get(1)?,
        address: r.get(2)?,
        channel: Channel::parse(&r.get::<_, String>(3)?)?,
        consumer_no: r.get(4)?,
        code_hash: r.get(5)?,
        state: r.get(6)?,
        attempts: narrow(r.get(7)?, "attempts")?,
        created_at: from_ms(r.get(8)?)?,
        expires_at: from_ms(r.get(9)?)?,
        sent_at: from_ms(r.get(10)?)?,
    })
}

const ACCOUNT_COLUMNS: &str = "consumer_no, login_id, password_hash, must_change, failed_logins, \
     locked_until, created_at, password_changed_at";

fn account(r: &Row<'_>) -> Result<PortalAccount> {
    Ok(PortalAccount {
        consumer_no: r.get(0)?,
        login_id: r.get(1)?,
        password_hash: r.get(2)?,
        must_change: r.get(3)?,
        failed_logins: narrow(r.get(4)?, "failed logins")?,
        locked_until: from_ms_opt(r.get(5)?)?,
        created_at: from_ms(r.get(6)?)?,
        password_changed_at: from_ms(r.get(7)?)?,
    })
}

/// When the hourly limit of sendings to (`asked_no`, `address`) allows the next one (`None`:
/// now).
fn next_send_allowed(
    tx: &rusqlite::Transaction<'_>,
    asked_no: &str,
    address: &str,
    rules: &PortalRules,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let hour_ago = now - Duration::hours(1);
    let (count, oldest): (i64, Option<i64>) = tx
        .prepare_cached(
            "SELECT count(*), min(at) FROM portal_code_send \
             WHERE asked_no = ?1 AND address = ?2 AND at > ?3",
        )?
        .query_row(params![asked_no, address, ms(hour_ago)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if count < i64::from(rules.sends_per_hour) {
        return Ok(None);
    }
    let oldest = from_ms(oldest.unwrap_or_else(|| ms(now)))?;
    Ok(Some(oldest + Duration::hours(1)))
}

fn record_send(
    tx: &rusqlite::Transaction<'_>,
    asked_no: &str,
    address: &str,
    challenge_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO portal_code_send (asked_no, address, at, challenge_id) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![asked_no, address, ms(now), challenge_id])?;
    Ok(())
}

fn challenge_in(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<Option<Challenge>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {CHALLENGE_COLUMNS} FROM portal_challenge WHERE id = ?1"
    ))?;
    let mut rows = stmt.query(params![id])?;
    rows.next()?.map(challenge).transpose()
}

impl Store {
    /// Stores a registration request's challenge and counts its sending, unless the hourly
    /// limit for its consumer number and address is reached.
    pub fn portal_challenge_start(
        &self,
        new: &NewChallenge<'_>,
        rules: &PortalRules,
        now: DateTime<Utc>,
    ) -> Result<Sending> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if let Some(until) = next_send_allowed(&tx, new.asked_no, new.address, rules, now)? {
            return Ok(Sending::TooSoon { until });
        }
        let inserted = tx
            .prepare_cached(
                "INSERT INTO portal_challenge (id, asked_no, address, channel, consumer_no, \
                 code_hash, state, attempts, created_at, expires_at, sent_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', 0, ?7, ?8, ?7) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                new.id,
                new.asked_no,
                new.address,
                new.channel.name(),
                new.consumer_no,
                new.code_hash,
                ms(now),
                ms(now + rules.code_ttl),
            ])?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a challenge {} exists already",
                new.id
            )));
        }
        record_send(&tx, new.asked_no, new.address, new.id, now)?;
        let stored = challenge_in(&tx, new.id)?
            .ok_or_else(|| StoreError::Corrupt(format!("challenge {} vanished", new.id)))?;
        tx.commit()?;
        Ok(Sending::Sent(stored))
    }

    /// A new code for an open, unexpired challenge (`code_hash`), good for `code_ttl` from
    /// now; its guesses so far still count.
    pub fn portal_challenge_resend(
        &self,
        id: &str,
        code_hash: &str,
        rules: &PortalRules,
        now: DateTime<Utc>,
    ) -> Result<Sending> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(c) = challenge_in(&tx, id)? else {
            return Ok(Sending::Closed);
        };
        if c.state != "open" || now >= c.expires_at || c.attempts >= rules.max_code_attempts {
            return Ok(Sending::Closed);
        }
        let mut until = c.resend_at(rules);
        if let Some(limit) = next_send_allowed(&tx, &c.asked_no, &c.address, rules, now)? {
            until = until.max(limit);
        }
        if now < until {
            return Ok(Sending::TooSoon { until });
        }
        tx.prepare_cached(
            "UPDATE portal_challenge SET code_hash = ?2, expires_at = ?3, sent_at = ?4 \
             WHERE id = ?1",
        )?
        .execute(params![id, code_hash, ms(now + rules.code_ttl), ms(now)])?;
        record_send(&tx, &c.asked_no, &c.address, id, now)?;
        let stored = challenge_in(&tx, id)?
            .ok_or_else(|| StoreError::Corrupt(format!("challenge {id} vanished")))?;
        tx.commit()?;
        Ok(Sending::Sent(stored))
    }

    /// Counts a guess at challenge `id`'s code and hands the challenge back to check it
    /// against, unless it is closed (unknown, expired, verified, or out of guesses: then it
    /// is marked dead).
    pub fn portal_challenge_guess(
        &self,
        id: &str,
        rules: &PortalRules,
        now: DateTime<Utc>,
    ) -> Result<Guess> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(c) = challenge_in(&tx, id)? else {
            return Ok(Guess::Closed);
        };
        if c.state == "open" && c.attempts >= rules.max_code_attempts {
            tx.prepare_cached("UPDATE portal_challenge SET state = 'dead' WHERE id = ?1")?
                .execute(params![id])?;
            tx.commit()?;
            return Ok(Guess::Closed);
        }
        if c.state != "open" || now >= c.expires_at {
            return Ok(Guess::Closed);
        }
        tx.prepare_cached("UPDATE portal_challenge SET attempts = attempts + 1 WHERE id = ?1")?
            .execute(params![id])?;
        let counted = challenge_in(&tx, id)?
            .ok_or_else(|| StoreError::Corrupt(format!("challenge {id} vanished")))?;
        tx.commit()?;
        Ok(Guess::Check(counted))
    }

    /// The code of challenge `id` verified: the challenge is closed and its consumer's account
    /// made, or reset (a new default password that must be changed, no failed logins, every
    /// session ended). `None` if the challenge was no longer open or matched no consumer.
    pub fn portal_register(
        &self,
        id: &str,
        login_id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PortalAccount>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let consumer_no: Option<String> = tx
            .prepare_cached(
                "UPDATE portal_challenge SET state = 'verified' \
                 WHERE id = ?1 AND state = 'open' AND consumer_no IS NOT NULL \
                 RETURNING consumer_no",
            )?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        let Some(consumer_no) = consumer_no else {
            return Ok(None);
        };
        tx.prepare_cached(
            "INSERT INTO portal_account (consumer_no, login_id, password_hash, must_change, \
             failed_logins, locked_until, created_at, password_changed_at) \
             VALUES (?1, ?2, ?3, 1, 0, NULL, ?4, ?4) \
             ON CONFLICT (consumer_no) DO UPDATE SET login_id = excluded.login_id, \
             password_hash = excluded.password_hash, must_change = 1, failed_logins = 0, \
             locked_until = NULL, password_changed_at = excluded.password_changed_at",
        )?
        .execute(params![consumer_no, login_id, password_hash, ms(now)])?;
        tx.prepare_cached(
            "UPDATE portal_session SET revoked_at = ?2 \
             WHERE consumer_no = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![consumer_no, ms(now)])?;
        let stored = tx
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM portal_account WHERE consumer_no = ?1"
            ))?
            .query_row(params![consumer_no], |r| Ok(account(r)))??;
        tx.commit()?;
        Ok(Some(stored))
    }

    /// Counts a login as failed before it is checked (a success undoes that): locks the
    /// account for `lockout` when that makes `max_failed_logins` in a row.
    pub fn portal_login_gate(
        &self,
        login_id: &str,
        rules: &PortalRules,
        now: DateTime<Utc>,
    ) -> Result<LoginGate> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let found = tx
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM portal_account WHERE login_id = ?1"
            ))?
            .query_row(params![login_id], |r| Ok(account(r)))
            .optional()?
            .transpose()?;
        let Some(acc) = found else {
            return Ok(LoginGate::Unknown);
        };
        if let Some(until) = acc.locked_until.filter(|u| now < *u) {
            return Ok(LoginGate::Locked { until });
        }
        let failed = acc.failed_logins + 1;
        let (failed, locked_until) = if failed >= rules.max_failed_logins {
            (0, Some(now + rules.lockout))
        } else {
            (failed, None)
        };
        tx.prepare_cached(
            "UPDATE portal_account SET failed_logins = ?2, locked_until = ?3 \
             WHERE consumer_no = ?1",
        )?
        .execute(params![acc.consumer_no, failed, locked_until.map(ms)])?;
        tx.commit()?;
        Ok(LoginGate::Check(acc))
    }

    /// The password matched: the failed logins are forgotten and `session` stored.
    pub fn portal_login_succeeded(&self, session: &NewSession<'_>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "UPDATE portal_account SET failed_logins = 0, locked_until = NULL \
             WHERE consumer_no = ?1",
        )?
        .execute(params![session.consumer_no])?;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO portal_session (id, token_hash, consumer_no, created_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                session.id,
                session.token_hash.as_slice(),
                session.consumer_no,
                ms(session.created_at),
                ms(session.expires_at)
            ])?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a session {} or with the same secret exists",
                session.id
            )));
        }
        tx.commit()?;
        Ok(())
    }

    /// The session whose secret hashes to `hash`, valid or not.
    pub fn portal_session_by_hash(&self, hash: &[u8; 32]) -> Result<Option<PortalSession>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT s.id, s.consumer_no, a.login_id, a.must_change, s.created_at, s.expires_at, \
             s.revoked_at FROM portal_session s JOIN portal_account a USING (consumer_no) \
             WHERE s.token_hash = ?1",
        )?;
        let mut rows = stmt.query(params![hash.as_slice()])?;
        let Some(r) = rows.next()? else {
            return Ok(None);
        };
        Ok(Some(PortalSession {
            id: r.get(0)?,
            consumer_no: r.get(1)?,
            login_id: r.get(2)?,
            must_change: r.get(3)?,
            created_at: from_ms(r.get(4)?)?,
            expires_at: from_ms(r.get(5)?)?,
            revoked_at: from_ms_opt(r.get(6)?)?,
        }))
    }

    /// A consumer's account.
    pub fn portal_account(&self, consumer_no: &str) -> Result<Option<PortalAccount>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM portal_account WHERE consumer_no = ?1"
        ))?;
        let mut rows = stmt.query(params![consumer_no])?;
        rows.next()?.map(account).transpose()
    }

    /// A consumer's new password (no longer the default one); every session but `keep` ends.
    pub fn portal_set_password(
        &self,
        consumer_no: &str,
        password_hash: &str,
        keep: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx
            .prepare_cached(
                "UPDATE portal_account SET password_hash = ?2, must_change = 0, \
                 password_changed_at = ?3 WHERE consumer_no = ?1",
            )?
            .execute(params![consumer_no, password_hash, ms(now)])?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "no portal account for {consumer_no}"
            )));
        }
        tx.prepare_cached(
            "UPDATE portal_session SET revoked_at = ?3 \
             WHERE consumer_no = ?1 AND id <> ?2 AND revoked_at IS NULL",
        )?
        .execute(params![consumer_no, keep, ms(now)])?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("u.sqlite")).unwrap();
        (dir, store)
    }

    fn new<'a>(id: &'a str, consumer_no: Option<&'a str>) -> NewChallenge<'a> {
        NewChallenge {
            id,
            asked_no: "C-1",
            address: "+919876543210",
            channel: Channel::Sms,
            consumer_no,
            code_hash: "h1",
        }
    }

    #[test]
    fn sendings_are_limited_per_hour_and_resends_wait() {
        let (_d, s) = store();
        let rules = PortalRules::default();
        let t0 = t("2026-12-04T04:30:00Z");
        let Sending::Sent(c) = s
            .portal_challenge_start(&new("r1", Some("C-1")), &rules, t0)
            .unwrap()
        else {
            panic!("not started")
        };
        assert_eq!(c.expires_at, t0 + Duration::minutes(10));
        assert_eq!(
            s.portal_challenge_resend("r1", "h2", &rules, t0 + Duration::seconds(59))
                .unwrap(),
            Sending::TooSoon {
                until: t0 + Duration::seconds(60)
            }
        );
        let mut at = t0;
        for _ in 0..4 {
            at += Duration::seconds(60);
            assert!(matches!(
                s.portal_challenge_resend("r1", "h2", &rules, at).unwrap(),
                Sending::Sent(_)
            ));
        }
        // five in the hour: the sixth (even as a new request) waits for the first to age
        at += Duration::seconds(60);
        let until = t0 + Duration::hours(1);
        assert_eq!(
            s.portal_challenge_resend("r1", "h3", &rules, at).unwrap(),
            Sending::TooSoon { until }
        );
        assert_eq!(
            s.portal_challenge_start(&new("r2", None), &rules, at)
                .unwrap(),
            Sending::TooSoon { until }
        );
        // another address is not held up
        let other = NewChallenge {
            address: "+919876543211",
            ..new("r3", None)
        };
        assert!(matches!(
            s.portal_challenge_start(&other, &rules, at).unwrap(),
            Sending::Sent(_)
        ));
        assert_eq!(
            s.portal_challenge_resend("nope", "h", &rules, at).unwrap(),
            Sending::Closed
        );
    }

    #[test]
    fn guesses_are_counted_before_they_are_checked_and_run_out() {
        let (_d, s) = store();
        let rules = PortalRules::default();
        let t0 = t("2026-12-04T04:30:00Z");
        s.portal_challenge_start(&new("r1", Some("C-1")), &rules, t0)
            .unwrap();
        for n in 1..=5 {
            let Guess::Check(c) = s.portal_challenge_guess("r1", &rules, t0).unwrap() else {
                panic!("guess {n} refused")
            };
            assert_eq!(c.attempts, n);
        }
        assert_eq!(
            s.portal_challenge_guess("r1", &rules, t0).unwrap(),
            Guess::Closed
        );
        assert_eq!(
            s.portal_register("r1", "C-1", "p", t0).unwrap(),
            None,
            "a dead challenge registers nothing"
        );
        // expiry
        s.portal_challenge_start(&new("r2", Some("C-1")), &rules, t0)
            .unwrap();
        assert_eq!(
            s.portal_challenge_guess("r2", &rules, t0 + Duration::minutes(10))
                .unwrap(),
            Guess::Closed
        );
    }

    #[test]
    fn an_account_locks_after_failed_logins_and_a_success_forgets_them() {
        let (_d, s) = store();
        let rules = PortalRules::default();
        let t0 = t("2026-12-04T04:30:00Z");
        s.portal_challenge_start(&new("r1", Some("C-1")), &rules, t0)
            .unwrap();
        let acc = s.portal_register("r1", "C-1", "p0", t0).unwrap().unwrap();
        assert!(acc.must_change);
        for _ in 0..4 {
            assert!(matches!(
                s.portal_login_gate("C-1", &rules, t0).unwrap(),
                LoginGate::Check(_)
            ));
        }
        // a success after four failures forgets them
        s.portal_login_succeeded(&NewSession {
            id: "s1",
            token_hash: [1; 32],
            consumer_no: "C-1",
            created_at: t0,
            expires_at: t0 + rules.session_ttl,
        })
        .unwrap();
        assert_eq!(s.portal_account("C-1").unwrap().unwrap().failed_logins, 0);
        for _ in 0..5 {
            assert!(matches!(
                s.portal_login_gate("C-1", &rules, t0).unwrap(),
                LoginGate::Check(_)
            ));
        }
        assert_eq!(
            s.portal_login_gate("C-1", &rules, t0 + Duration::minutes(14))
                .unwrap(),
            LoginGate::Locked {
                until: t0 + Duration::minutes(15)
            }
        );
        assert!(matches!(
            s.portal_login_gate("C-1", &rules, t0 + Duration::minutes(15))
                .unwrap(),
            LoginGate::Check(_)
        ));
        assert_eq!(
            s.portal_login_gate("C-2", &rules, t0).unwrap(),
            LoginGate::Unknown
        );
        let session = s.portal_session_by_hash(&[1; 32]).unwrap().unwrap();
        assert!(session.must_change && session.is_valid_at(t0));
        s.portal_set_password("C-1", "p1", "s2", t0).unwrap();
        let session = s.portal_session_by_hash(&[1; 32]).unwrap().unwrap();
        assert!(!session.must_change && !session.is_valid_at(t0));
    }
}
