//! Invocation counters: the sender's strictly increasing counter, and the receiver's record of
//! the last counter accepted from a peer, which rejects replays.
//!
//! Both outlive one association: the application owns them, persists them (e.g. per meter and
//! per key) and hands them in. Neither is `Copy`, so a counter cannot be duplicated by accident.

use super::SecurityError;

/// The sender's invocation counter for one key. `take` hands out each value once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationCounter {
    next: u32,
}

impl InvocationCounter {
    /// A counter whose next value is `next` (as persisted by the application).
    pub fn new(next: u32) -> Self {
        InvocationCounter { next }
    }

    /// The value the next `take` will return; persist this.
    pub fn peek(&self) -> u32 {
        self.next
    }

    /// Uses the next value. Fails once the counter reaches u32::MAX: the key must be changed.
    pub fn take(&mut self) -> Result<u32, SecurityError> {
        let value = self.next;
        self.next = value
            .checked_add(1)
            .ok_or(SecurityError::CounterExhausted)?;
        Ok(value)
    }
}

/// The receiver's memory of a peer's counter: the last value accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayGuard {
    last_accepted: Option<u32>,
}

impl ReplayGuard {
    /// Nothing accepted yet: any counter (including 0) is fresh.
    pub fn new() -> Self {
        ReplayGuard {
            last_accepted: None,
        }
    }

    /// Restores a persisted guard.
    pub fn with_last_accepted(last: u32) -> Self {
        ReplayGuard {
            last_accepted: Some(last),
        }
    }

    /// The last counter accepted (persist this).
    pub fn last_accepted(&self) -> Option<u32> {
        self.last_accepted
    }

    /// Rejects a counter not greater than the last accepted one. Does not record it.
    pub fn check(&self, received: u32) -> Result<(), SecurityError> {
        match self.last_accepted {
            Some(last) if received <= last => Err(SecurityError::Replayed { received, last }),
            _ => Ok(()),
        }
    }

    /// Checks, then records `received`. Call this only once the APDU has been authenticated,
    /// so a forged APDU cannot move the counter.
    pub fn accept(&mut self, received: u32) -> Result<(), SecurityError> {
        self.check(received)?;
        self.last_accepted = Some(received);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_counter_increases_and_stops_at_max() {
        let mut c = InvocationCounter::new(7);
        assert_eq!(c.take(), Ok(7));
        assert_eq!(c.take(), Ok(8));
        assert_eq!(c.peek(), 9);
        let mut c = InvocationCounter::new(u32::MAX - 1);
        assert_eq!(c.take(), Ok(u32::MAX - 1));
        assert_eq!(c.take(), Err(SecurityError::CounterExhausted));
        assert_eq!(c.take(), Err(SecurityError::CounterExhausted));
    }

    #[test]
    fn receiver_rejects_replays_and_old_counters() {
        let mut g = ReplayGuard::new();
        assert_eq!(g.accept(0), Ok(()));
        assert_eq!(g.accept(5), Ok(()));
        assert_eq!(
            g.accept(5),
            Err(SecurityError::Replayed {
                received: 5,
                last: 5
            })
        );
        assert_eq!(
            g.accept(4),
            Err(SecurityError::Replayed {
                received: 4,
                last: 5
            })
        );
        assert_eq!(g.last_accepted(), Some(5));
        assert_eq!(g.check(6), Ok(()));
        assert_eq!(g.last_accepted(), Some(5), "check does not record");
        let restored = ReplayGuard::with_last_accepted(u32::MAX);
        assert!(restored.check(u32::MAX).is_err());
    }
}
