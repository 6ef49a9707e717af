//! The signature on webhooks between Urja and other systems, both ways: the payment gateway's
//! confirmations coming in, and routed messages going out to CIS/CRM, billing, WFM and OMS.
//!
//! The header is `x-urja-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the
//! shape Stripe uses; the timestamp bounds how long a captured request can be replayed.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-urja-signature";

/// How far a signature's time may be from the receiver's clock.
pub const TOLERANCE_S: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing or malformed")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the signature is {0} s away from our clock (at most {TOLERANCE_S} s)")]
    Stale(i64),
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` sent at `now`.
pub fn sign(secret: &[u8], body: &[u8], now: DateTime<Utc>) -> String {
    let t = now.timestamp();
    let tag = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// Checks `header` (the signature header's value, if there was one) against `body` at `now`.
pub fn check(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Malformed)?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    mac(secret, t, body)
        .verify_slice(&v1)
        .map_err(|_| SignatureError::Mismatch)?;
    let skew = now.timestamp().saturating_sub(t);
    if skew.abs() > TOLERANCE_S {
        return Err(SignatureError::Stale(skew));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_checks_only_for_its_body_secret_and_time() {
        let now = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let sig = sign(b"s", b"{}", now);
        assert!(sig.starts_with("t=1790000000,v1="));
        assert_eq!(check(b"s", Some(&sig), b"{}", now), Ok(()));
        assert_eq!(
            check(b"x", Some(&sig), b"{}", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(b"s", Some(&sig), b"{ }", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(b"s", None, b"{}", now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(b"s", Some("t=1,v1=zz"), b"{}", now),
            Err(SignatureError::Malformed)
        );
        let later = now + chrono::Duration::seconds(TOLERANCE_S + 1);
        assert!(matches!(
            check(b"s", Some(&sig), b"{}", later),
            Err(SignatureError::Stale(_))
        ));
    }
}
