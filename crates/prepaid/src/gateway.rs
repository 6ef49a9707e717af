//! Payment-gateway confirmations: the webhook a gateway calls when a payment is captured,
//! signed with the secret the utility shares with it.
//!
//! The signature header is `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the shape
//! Stripe uses (Razorpay signs the body alone; the timestamp here bounds how long a captured
//! request can be replayed). The body is JSON:
//!
//! ```json
//! {"event": "payment.captured",
//!  "payment": {"id": "pay_29QQoUBi66xm2f", "amount": 50000, "currency": "INR",
//!              "consumer_no": "C000123", "captured_at": "2026-12-04T10:15:00Z"}}
//! ```
//!
//! Amounts are paise. A replayed confirmation is harmless anyway: the payment id is the ledger
//! cause.

use chrono::{DateTime, Utc};
use model::Paise;
use model::signature::{self, SignatureError};
use serde::{Deserialize, Serialize};

use crate::service::PaymentConfirmation;

pub use model::signature::{SIGNATURE_HEADER, TOLERANCE_S, sign};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("the signature header is missing or malformed")]
    MalformedSignature,
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the signature is {0} s away from our clock (at most {TOLERANCE_S} s)")]
    Stale(i64),
    #[error("the body is not a payment confirmation: {0}")]
    Body(String),
    /// A well-formed event this endpoint does not act on (acknowledged, nothing done).
    #[error("event {0} is not acted on")]
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookBody {
    pub event: String,
    pub payment: WebhookPayment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPayment {
    pub id: String,
    /// Paise.
    pub amount: i64,
    pub currency: String,
    pub consumer_no: String,
    pub captured_at: DateTime<Utc>,
}

/// Checks `header` against `body` and reads the confirmation (`gateway` names the gateway).
pub fn verify(
    gateway: &str,
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<PaymentConfirmation, GatewayError> {
    signature::check(secret, header, body, now).map_err(|e| match e {
        SignatureError::Malformed => GatewayError::MalformedSignature,
        SignatureError::Mismatch => GatewayError::BadSignature,
        SignatureError::Stale(skew) => GatewayError::Stale(skew),
    })?;
    let parsed: WebhookBody =
        serde_json::from_slice(body).map_err(|e| GatewayError::Body(e.to_string()))?;
    if parsed.event != "payment.captured" {
        return Err(GatewayError::Ignored(parsed.event));
    }
    let p = parsed.payment;
    if p.currency != "INR" {
        return Err(GatewayError::Body(format!(
            "currency {} (only INR)",
            p.currency
        )));
    }
    if p.amount <= 0 || p.amount > billing::payments::MAX_PAYMENT.0 {
        return Err(GatewayError::Body(format!("amount {} paise", p.amount)));
    }
    if p.id.is_empty() || p.id.len() > 100 || p.consumer_no.is_empty() {
        return Err(GatewayError::Body(
            "payment id or consumer number missing".into(),
        ));
    }
    Ok(PaymentConfirmation {
        gateway: gateway.to_string(),
        payment_id: p.id,
        consumer_no: p.consumer_no,
        amount: Paise(p.amount),
        paid_at: p.captured_at,
        body: String::from_utf8_lossy(body).into_owned(),
        digital: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(amount: i64) -> Vec<u8> {
        serde_json::to_vec(&WebhookBody {
            event: "payment.captured".into(),
            payment: WebhookPayment {
                id: "pay_1".into(),
                amount,
                currency: "INR".into(),
                consumer_no: "C1".into(),
                captured_at: DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
            },
        })
        .unwrap()
    }

    #[test]
    fn a_signed_confirmation_is_read_and_anything_else_refused() {
        let now = DateTime::from_timestamp(1_790_000_100, 0).unwrap();
        let b = body(50_000);
        let sig = sign(b"secret", &b, now);
        let ok = verify("pg", b"secret", Some(&sig), &b, now).unwrap();
        assert_eq!(ok.amount, Paise(50_000));
        assert_eq!(ok.payment_id, "pay_1");
        assert_eq!(
            verify("pg", b"other", Some(&sig), &b, now),
            Err(GatewayError::BadSignature)
        );
        let tampered = body(5_000_000);
        assert_eq!(
            verify("pg", b"secret", Some(&sig), &tampered, now),
            Err(GatewayError::BadSignature)
        );
        assert_eq!(
            verify("pg", b"secret", None, &b, now),
            Err(GatewayError::MalformedSignature)
        );
        assert_eq!(
            verify("pg", b"secret", Some("v1=zz"), &b, now),
            Err(GatewayError::MalformedSignature)
        );
        let later = now + chrono::Duration::seconds(TOLERANCE_S + 1);
        assert!(matches!(
            verify("pg", b"secret", Some(&sig), &b, later),
            Err(GatewayError::Stale(_))
        ));
        let zero = body(0);
        let sig0 = sign(b"secret", &zero, now);
        assert!(matches!(
            verify("pg", b"secret", Some(&sig0), &zero, now),
            Err(GatewayError::Body(_))
        ));
        let garbage = b"{\"event\":";
        let sig_g = sign(b"secret", garbage, now);
        assert!(matches!(
            verify("pg", b"secret", Some(&sig_g), garbage, now),
            Err(GatewayError::Body(_))
        ));
    }
}
