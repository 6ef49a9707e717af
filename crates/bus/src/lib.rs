//! `bus`: how messages travel between Urja's parts. In-process for now (one process, `urja up`);
//! NATS JetStream later, behind the same shape: a publisher hands over a message and learns when
//! every interested subscriber has *acknowledged* it, which a subscriber does only once the
//! message is safe on its side. Delivery is at least once; messages carry idempotency keys
//! ([`model::HesMessage::key`]) so a repeat is harmless.
//!
//! A subscriber that drops a delivery without acknowledging it makes the publish fail with
//! [`BusError::NotAcknowledged`]; the publisher (the head-end's outbox relay) keeps the message
//! and tries again later. A subscription that has gone away is forgotten.

use std::sync::{Arc, Mutex};

use model::HesMessage;
use tokio::sync::{mpsc, oneshot};

/// A message on the bus, shared by every subscriber that receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Idempotency key (kind/meter/time).
    pub key: String,
    pub message: HesMessage,
}

impl Envelope {
    pub fn new(message: HesMessage) -> Self {
        Envelope {
            key: message.key(),
            message,
        }
    }

    pub fn kind(&self) -> &'static str {
        self.message.kind()
    }
}

/// Why a publish did not complete; the message should be published again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    #[error("subscriber {subscriber} did not acknowledge message {key}")]
    NotAcknowledged { subscriber: String, key: String },
}

/// One delivery of a message to one subscriber. Call [`Delivery::ack`] once the message is
/// durable (or deliberately ignored); dropping it unacknowledged asks for redelivery.
#[derive(Debug)]
pub struct Delivery {
    pub envelope: Arc<Envelope>,
    ack: oneshot::Sender<()>,
}

impl Delivery {
    pub fn ack(self) {
        let _ = self.ack.send(());
    }
}

struct Subscriber {
    name: String,
    /// Message kinds wanted; empty: all.
    kinds: Vec<String>,
    tx: mpsc::Sender<Delivery>,
}

impl Subscriber {
    fn wants(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind)
    }
}

/// The in-process bus. Cheap to clone; all clones are the same bus.
#[derive(Clone, Default)]
pub struct Bus {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.lock().iter().map(|s| s.name.clone()).collect();
        f.debug_struct("Bus").field("subscribers", &names).finish()
    }
}

/// The receiving end of a subscription.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Delivery>,
}

impl Subscription {
    /// The next delivery; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// A delivery if one is waiting.
    pub fn try_next(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }
}

impl Bus {
    /// The subscriber list. A panic elsewhere while it was held leaves it consistent (every
    /// change is one push or retain), so a poisoned lock is used as it is: treating it as "no
    /// subscribers" would mark messages delivered that nobody received.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn in_process() -> Self {
        Bus::default()
    }

    /// Subscribes `name` to the message kinds in `kinds` (empty: every kind). `capacity` bounds
    /// the deliveries waiting for this subscriber; publishers wait when it is full.
    pub fn subscribe(&self, name: &str, kinds: &[&str], capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.lock().push(Subscriber {
            name: name.to_string(),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            tx,
        });
        Subscription { rx }
    }

    /// Publishes one message and waits until every subscriber that wants its kind has
    /// acknowledged it. Returns how many did (0 when nobody listens to this kind).
    pub async fn publish(&self, envelope: Arc<Envelope>) -> Result<usize, BusError> {
        let targets: Vec<(String, mpsc::Sender<Delivery>)> = {
            let mut subs = self.lock();
            subs.retain(|s| !s.tx.is_closed());
            subs.iter()
                .filter(|s| s.wants(envelope.kind()))
                .map(|s| (s.name.clone(), s.tx.clone()))
                .collect()
        };
        let mut pending = Vec::with_capacity(targets.len());
        for (name, tx) in targets {
            let (ack, acked) = oneshot::channel();
            let delivery = Delivery {
                envelope: envelope.clone(),
                ack,
            };
            // A subscription closed since we looked is simply gone: nothing to wait for.
            if tx.send(delivery).await.is_ok() {
                pending.push((name, acked));
            }
        }
        let mut acknowledged = 0;
        for (name, acked) in pending {
            match acked.await {
                Ok(()) => acknowledged += 1,
                Err(_) => {
                    return Err(BusError::NotAcknowledged {
                        subscriber: name,
                        key: envelope.key.clone(),
                    });
                }
            }
        }
        Ok(acknowledged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use model::{HesMessage, MeterSerial, OutageState};

    fn outage(meter: &str) -> Arc<Envelope> {
        Arc::new(Envelope::new(HesMessage::Outage {
            meter: MeterSerial::new(meter).unwrap(),
            state: OutageState::Started,
            at: Utc.with_ymd_and_hms(2026, 11, 26, 4, 0, 0).unwrap(),
        }))
    }

    #[tokio::test]
    async fn publish_waits_for_every_interested_subscriber() {
        let bus = Bus::in_process();
        let mut all = bus.subscribe("mdm", &[], 8);
        let mut outages = bus.subscribe("oms", &["outage"], 8);
        let mut readings = bus.subscribe("billing", &["block_load"], 8);
        let publisher = tokio::spawn({
            let bus = bus.clone();
            async move { bus.publish(outage("M1")).await }
        });
        let a = all.next().await.unwrap();
        let b = outages.next().await.unwrap();
        assert_eq!(a.envelope.key, "outage/M1/2026-11-26T04:00:00Z#Started");
        assert!(!publisher.is_finished());
        a.ack();
        b.ack();
        assert_eq!(publisher.await.unwrap(), Ok(2));
        assert!(
            readings.try_next().is_none(),
            "block_load subscriber got an outage"
        );
    }

    #[tokio::test]
    async fn an_unacknowledged_delivery_fails_the_publish() {
        let bus = Bus::in_process();
        let mut sub = bus.subscribe("mdm", &[], 8);
        let publisher = tokio::spawn({
            let bus = bus.clone();
            async move { bus.publish(outage("M2")).await }
        });
        drop(sub.next().await.unwrap());
        assert!(matches!(
            publisher.await.unwrap(),
            Err(BusError::NotAcknowledged { subscriber, .. }) if subscriber == "mdm"
        ));
    }

    #[tokio::test]
    async fn a_closed_subscription_is_forgotten() {
        let bus = Bus::in_process();
        drop(bus.subscribe("gone", &[], 1));
        assert_eq!(bus.publish(outage("M3")).await, Ok(0));
        assert_eq!(format!("{bus:?}"), "Bus { subscribers: [] }");
    }
}
