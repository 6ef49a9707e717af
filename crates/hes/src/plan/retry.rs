//! When to try a failed job again: bounded attempts, exponential backoff with a deterministic
//! ±20 % jitter (from the meter's serial and the attempt number), a cap on any one wait, and a
//! retry window after which the job is given up and reported. A failure that retrying cannot
//! cure (the meter refused the association: wrong keys or rights) is given up at once.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dlms::apdu::{ActionResult, AssociationResult, DataAccessResult};
use dlms::association::client::ClientError;
use dlms::security::SecurityError;
use model::MeterSerial;
use serde::{Deserialize, Serialize};

use super::duration;
use super::{delta, scale, stable_hash};
use crate::session::{Refusal, SessionError};

/// How a job is retried. Every field has a default; durations read as `"1m"`, `"3h"`, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 4). Zero counts as one.
    pub attempts: u32,
    /// Wait after the first failure (default 1 min).
    #[serde(with = "duration")]
    pub backoff: Duration,
    /// Each further wait is this many times the one before (default 2). Zero counts as one.
    pub factor: u32,
    /// No single wait is longer (default 30 min).
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// No attempt starts later than this after the first one (default 3 h).
    #[serde(with = "duration")]
    pub window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_secs(60),
            factor: 2,
            max_backoff: Duration::from_secs(30 * 60),
            window: Duration::from_secs(3 * 3600),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryAt(DateTime<Utc>),
    GiveUp(GiveUpReason),
}

/// Why a job is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GiveUpReason {
    /// The last allowed attempt failed.
    AttemptsExhausted,
    /// The next attempt would start after the retry window closes.
    WindowClosed,
    /// The failure is one a retry cannot cure (see [`retryable`]).
    NotRetryable,
}

impl GiveUpReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::AttemptsExhausted => "attempts_exhausted",
            GiveUpReason::WindowClosed => "window_closed",
            GiveUpReason::NotRetryable => "not_retryable",
        }
    }
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RetryPolicy {
    /// The last time an attempt may start for a job first tried at `first_attempt_at`.
    pub fn deadline(&self, first_attempt_at: DateTime<Utc>) -> DateTime<Utc> {
        first_attempt_at
            .checked_add_signed(delta(self.window))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The wait after attempt `attempt` (1-based) failed: `backoff × factor^(attempt−1)`, moved
    /// by up to ±20 % (a stable function of the serial and the attempt, so meters that failed
    /// together do not retry together), and never more than `max_backoff`.
    pub fn backoff_after(&self, attempt: u32, serial: &MeterSerial) -> Duration {
        let base_ms = self.backoff.as_millis();
        let growth = u128::from(self.factor.max(1)).saturating_pow(attempt.saturating_sub(1));
        let cap_ms = self.max_backoff.as_millis();
        let nominal = base_ms.saturating_mul(growth).min(cap_ms);
        // −200‰ ..= +200‰.
        let hash = stable_hash(&[serial.as_str().as_bytes(), &attempt.to_be_bytes()]);
        let permille = 800 + u128::from(scale(hash, 401));
        let jittered = nominal.saturating_mul(permille) / 1000;
        let ms = jittered.min(cap_ms);
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// After attempt `attempt` (1-based) of a job first tried at `first_attempt_at` failed at
    /// `failed_at`: the time of the next attempt, or why there is none. A retry is never
    /// scheduled past [`RetryPolicy::deadline`] and never beyond `attempts` attempts.
    pub fn next_after_failure(
        &self,
        attempt: u32,
        first_attempt_at: DateTime<Utc>,
        failed_at: DateTime<Utc>,
        serial: &MeterSerial,
    ) -> Next {
        if attempt >= self.attempts.max(1) {
            return Next::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let wait = delta(self.backoff_after(attempt, serial));
        let Some(at) = failed_at.checked_add_signed(wait) else {
            return Next::GiveUp(GiveUpReason::WindowClosed);
        };
        if at > self.deadline(first_attempt_at) {
            return Next::GiveUp(GiveUpReason::WindowClosed);
        }
        Next::RetryAt(at)
    }

    /// [`RetryPolicy::next_after_failure`] for a failure of kind `failure`: gives up at once when
    /// a retry cannot help.
    pub fn next_after(
        &self,
        failure: FailureKind,
        attempt: u32,
        first_attempt_at: DateTime<Utc>,
        failed_at: DateTime<Utc>,
        serial: &MeterSerial,
    ) -> Next {
        if !retryable(failure) {
            return Next::GiveUp(GiveUpReason::NotRetryable);
        }
        self.next_after_failure(attempt, first_attempt_at, failed_at, serial)
    }
}

/// What went wrong with an attempt, in the few words the failure report and the metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The TCP connection could not be made.
    Connect,
    /// The meter did not answer in time.
    Timeout,
    /// The connection dropped.
    Closed,
    /// Bytes that are not a frame, or an APDU that does not decode (corruption on the line).
    Framing,
    /// The meter refused the association or the access (wrong keys, secret or rights).
    Refused,
    /// The meter answered, but not as the protocol or the request expects.
    Protocol,
    /// The request was not sent: its parameters are out of range (our mistake, not the meter's).
    Invalid,
    /// Anything else.
    Other,
}

impl FailureKind {
    pub const ALL: [FailureKind; 8] = [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Closed,
        FailureKind::Framing,
        FailureKind::Refused,
        FailureKind::Protocol,
        FailureKind::Invalid,
        FailureKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Closed => "closed",
            FailureKind::Framing => "framing",
            FailureKind::Refused => "refused",
            FailureKind::Protocol => "protocol",
            FailureKind::Invalid => "invalid",
            FailureKind::Other => "other",
        }
    }

    /// Classifies a session error.
    ///
    /// Only refusals a retry cannot cure are [`FailureKind::Refused`]: a permanent AARE
    /// rejection, a refused HLS pass 3 or failed pass 4, access denied to the object, or an
    /// exhausted invocation counter. A GMAC tag that does not verify in the middle of a session
    /// is counted as [`FailureKind::Protocol`], because on a TCP wrapper (no frame checksum) a
    /// corrupted byte looks exactly like that.
    pub fn of(error: &SessionError) -> FailureKind {
        match error {
            SessionError::Connect { .. } => FailureKind::Connect,
            SessionError::Io(_) | SessionError::Closed => FailureKind::Closed,
            SessionError::Timeout(..) => FailureKind::Timeout,
            SessionError::Framing(_) => FailureKind::Framing,
            SessionError::Association(e) => Self::of_client(e),
            SessionError::Refused(r) => match r {
                DataAccessResult::ReadWriteDenied | DataAccessResult::ScopeOfAccessViolated => {
                    FailureKind::Refused
                }
                _ => FailureKind::Protocol,
            },
            SessionError::ActionFailed(r) => match r {
                ActionResult::ReadWriteDenied | ActionResult::ScopeOfAccessViolated => {
                    FailureKind::Refused
                }
                _ => FailureKind::Protocol,
            },
            SessionError::CommandRefused { reason, .. } => match reason {
                Refusal::Set(
                    DataAccessResult::ReadWriteDenied | DataAccessResult::ScopeOfAccessViolated,
                )
                | Refusal::Action(
                    ActionResult::ReadWriteDenied | ActionResult::ScopeOfAccessViolated,
                ) => FailureKind::Refused,
                _ => FailureKind::Protocol,
            },
            // Not sent: the same request would be refused again.
            SessionError::InvalidRequest(_) => FailureKind::Invalid,
            SessionError::Exception(_)
            | SessionError::ServiceError(_)
            | SessionError::Unexpected(_) => FailureKind::Protocol,
            // A kind added to the session's errors later counts as "other" until classified here.
            #[allow(unreachable_patterns)]
            _ => FailureKind::Other,
        }
    }

    fn of_client(error: &ClientError) -> FailureKind {
        match error {
            ClientError::Rejected { result, .. } => match result {
                AssociationResult::RejectedTransient => FailureKind::Other,
                _ => FailureKind::Refused,
            },
            ClientError::HlsRefused(_) | ClientError::ServerAuthenticationFailed => {
                FailureKind::Refused
            }
            ClientError::Security(SecurityError::CounterExhausted) => FailureKind::Refused,
            ClientError::Security(_) => FailureKind::Protocol,
            ClientError::Decode(_) => FailureKind::Framing,
            ClientError::Exception(_)
            | ClientError::Unexpected { .. }
            | ClientError::InvokeIdMismatch { .. }
            | ClientError::BlockOutOfOrder { .. }
            | ClientError::ResponseTooLong => FailureKind::Protocol,
            ClientError::WrongState { .. } | ClientError::Busy(_) | ClientError::Config(_) => {
                FailureKind::Other
            }
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether trying again can help: everything but [`FailureKind::Refused`] (wrong keys stay
/// wrong; retrying them only fills the meter's security log) and [`FailureKind::Invalid`].
pub fn retryable(kind: FailureKind) -> bool {
    !matches!(kind, FailureKind::Refused | FailureKind::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use dlms::apdu::SourceDiagnostic;

    fn serial() -> MeterSerial {
        MeterSerial::new("URJ10000007").unwrap()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap()
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let p = RetryPolicy::default();
        let s = serial();
        for attempt in 1..=10u32 {
            let nominal = (60u64 << (attempt - 1)).min(1800) as f64;
            let got = p.backoff_after(attempt, &s).as_secs_f64();
            assert!(got >= nominal * 0.8 - 0.001, "attempt {attempt}: {got}");
            assert!(
                got <= (nominal * 1.2).min(1800.0) + 0.001,
                "attempt {attempt}: {got}"
            );
        }
        assert_eq!(p.backoff_after(3, &s), p.backoff_after(3, &s));
        assert!(p.backoff_after(u32::MAX, &s) <= p.max_backoff);
    }

    #[test]
    fn retries_then_gives_up_after_the_last_attempt() {
        let p = RetryPolicy::default();
        let s = serial();
        let mut failed_at = t0();
        for attempt in 1..4 {
            match p.next_after_failure(attempt, t0(), failed_at, &s) {
                Next::RetryAt(at) => {
                    assert!(at > failed_at);
                    failed_at = at + TimeDelta::seconds(10);
                }
                other => panic!("attempt {attempt}: {other:?}"),
            }
        }
        assert_eq!(
            p.next_after_failure(4, t0(), failed_at, &s),
            Next::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }

    #[test]
    fn never_past_the_window() {
        let p = RetryPolicy {
            attempts: 100,
            ..RetryPolicy::default()
        };
        let s = serial();
        let late = t0() + TimeDelta::minutes(179);
        assert_eq!(
            p.next_after_failure(2, t0(), late, &s),
            Next::GiveUp(GiveUpReason::WindowClosed)
        );
        let early = t0() + TimeDelta::minutes(10);
        assert!(matches!(
            p.next_after_failure(2, t0(), early, &s),
            Next::RetryAt(_)
        ));
    }

    #[test]
    fn wrong_keys_give_up_at_once() {
        let p = RetryPolicy::default();
        let refused =
            SessionError::Association(ClientError::HlsRefused(ActionResult::ReadWriteDenied));
        let kind = FailureKind::of(&refused);
        assert_eq!(kind, FailureKind::Refused);
        assert_eq!(
            p.next_after(kind, 1, t0(), t0(), &serial()),
            Next::GiveUp(GiveUpReason::NotRetryable)
        );
        let timeout = SessionError::Timeout(Duration::from_secs(10), "response");
        let kind = FailureKind::of(&timeout);
        assert_eq!(kind, FailureKind::Timeout);
        assert!(matches!(
            p.next_after(kind, 1, t0(), t0(), &serial()),
            Next::RetryAt(_)
        ));
    }

    #[test]
    fn session_errors_are_classified() {
        use std::io;
        let addr = "127.0.0.1:4059".parse().unwrap();
        let cases: Vec<(SessionError, FailureKind)> = vec![
            (
                SessionError::Connect {
                    address: addr,
                    source: io::Error::from(io::ErrorKind::ConnectionRefused),
                },
                FailureKind::Connect,
            ),
            (
                SessionError::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
                FailureKind::Closed,
            ),
            (SessionError::Closed, FailureKind::Closed),
            (
                SessionError::Framing("bad FCS".into()),
                FailureKind::Framing,
            ),
            (
                SessionError::Association(ClientError::Rejected {
                    result: AssociationResult::RejectedPermanent,
                    diagnostic: SourceDiagnostic::ServiceUser(13),
                    service_error: None,
                }),
                FailureKind::Refused,
            ),
            (
                SessionError::Association(ClientError::Rejected {
                    result: AssociationResult::RejectedTransient,
                    diagnostic: SourceDiagnostic::ServiceUser(1),
                    service_error: None,
                }),
                FailureKind::Other,
            ),
            (
                SessionError::Association(ClientError::Security(
                    SecurityError::AuthenticationFailed,
                )),
                FailureKind::Protocol,
            ),
            (
                SessionError::Association(ClientError::Security(SecurityError::CounterExhausted)),
                FailureKind::Refused,
            ),
            (
                SessionError::Refused(DataAccessResult::ReadWriteDenied),
                FailureKind::Refused,
            ),
            (
                SessionError::Refused(DataAccessResult::TemporaryFailure),
                FailureKind::Protocol,
            ),
            (SessionError::Unexpected("x".into()), FailureKind::Protocol),
            (
                SessionError::CommandRefused {
                    what: "set the load limit",
                    reason: Refusal::Set(DataAccessResult::ReadWriteDenied),
                },
                FailureKind::Refused,
            ),
            (
                SessionError::CommandRefused {
                    what: "disconnect",
                    reason: Refusal::Action(ActionResult::TemporaryFailure),
                },
                FailureKind::Protocol,
            ),
            (
                SessionError::InvalidRequest("capture period 0".into()),
                FailureKind::Invalid,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(FailureKind::of(&error), kind, "{error}");
        }
    }

    #[test]
    fn names_and_config() {
        for k in FailureKind::ALL {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        let p: RetryPolicy = serde_json::from_str(r#"{ "attempts": 6, "window": "5h" }"#).unwrap();
        assert_eq!(p.attempts, 6);
        assert_eq!(p.window, Duration::from_secs(5 * 3600));
        assert_eq!(p.backoff, Duration::from_secs(60));
    }
}
