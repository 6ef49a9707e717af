//! What the ingest keeps per meter for VEE between batches: the meter's [`History`], its
//! category (which settings apply) and the last clock drift the head-end reported. Kept in
//! memory for the meters seen recently (a bounded cache), loaded from the store on first use,
//! and written back with a batch at most every `save_every` (and when evicted or at stop). The
//! history is derived data: after a crash it is at most `save_every` behind, and absorbing a
//! row again is harmless.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use model::MeterSerial;
use store::{Store, StoreError};

use crate::vee::History;

/// One meter's VEE state.
#[derive(Debug)]
pub(super) struct MeterVee {
    /// Kept on the meter's capture period (`History::period_s`).
    pub history: History,
    pub category: Option<String>,
    pub clock_drift_s: Option<i64>,
    /// Absorbed since it was last written.
    pub dirty: bool,
    saved_at: DateTime<Utc>,
    used: u64,
}

/// Most histories written back with one batch because they came due (evicted ones are always
/// written).
const SAVES_PER_BATCH: usize = 1024;

/// A stable share of `every` for `meter`.
fn spread(meter: &MeterSerial, every: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meter.hash(&mut h);
    let secs = every.num_seconds().max(1) as u64;
    Duration::seconds((h.finish() % secs) as i64)
}

#[derive(Debug, Default)]
pub(super) struct VeeCache {
    meters: HashMap<MeterSerial, MeterVee>,
    tick: u64,
}

impl VeeCache {
    /// The state of `meter`, loaded from the store on first use (its capture period as its
    /// data showed it, else `default_period_s`).
    pub fn get(
        &mut self,
        store: &Store,
        meter: &MeterSerial,
        default_period_s: i64,
        now: DateTime<Utc>,
        save_every: Duration,
    ) -> Result<&mut MeterVee, StoreError> {
        self.tick += 1;
        if !self.meters.contains_key(meter) {
            let period_s = store.mdm_capture_period(meter)?.unwrap_or(default_period_s);
            let history = store
                .mdm_vee_state(meter)?
                .and_then(|json| serde_json::from_str::<History>(&json).ok())
                .filter(|h| h.period_s() == period_s)
                .unwrap_or_else(|| History::new(period_s));
            let category = store.mdm_category_of(meter, now)?;
            self.meters.insert(
                meter.clone(),
                MeterVee {
                    history,
                    category,
                    clock_drift_s: None,
                    dirty: false,
                    // Spread over the save interval, so meters loaded together do not all come
                    // due in one batch.
                    saved_at: now - spread(meter, save_every),
                    used: 0,
                },
            );
        }
        let tick = self.tick;
        let entry = self
            .meters
            .get_mut(meter)
            .ok_or_else(|| StoreError::NotFound(format!("VEE state of {meter}")))?;
        entry.used = tick;
        Ok(entry)
    }

    /// The histories to write with this batch: those changed and not written for `save_every`,
    /// and, when the cache holds more than `capacity` meters, the least recently used ones,
    /// which are dropped from memory.
    pub fn due_for_saving(
        &mut self,
        now: DateTime<Utc>,
        save_every: Duration,
        capacity: usize,
    ) -> Vec<(MeterSerial, String)> {
        let mut out = Vec::new();
        for (meter, state) in &mut self.meters {
            if out.len() >= SAVES_PER_BATCH {
                break;
            }
            if state.dirty && now - state.saved_at >= save_every {
                out.extend(save(meter, state, now));
            }
        }
        if self.meters.len() > capacity {
            let mut by_use: Vec<(u64, MeterSerial)> = self
                .meters
                .iter()
                .map(|(m, s)| (s.used, m.clone()))
                .collect();
            by_use.sort_unstable();
            // Evict down to seven eighths, so eviction is not paid on every batch.
            let evict = self.meters.len() - capacity * 7 / 8;
            for (_, meter) in by_use.into_iter().take(evict) {
                if let Some(mut state) = self.meters.remove(&meter) {
                    out.extend(save(&meter, &mut state, now));
                }
            }
        }
        out
    }

    /// Every changed history, for a final write at stop.
    pub fn flush(&mut self, now: DateTime<Utc>) -> Vec<(MeterSerial, String)> {
        self.meters
            .iter_mut()
            .filter_map(|(m, s)| save(m, s, now))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.meters.len()
    }
}

fn save(
    meter: &MeterSerial,
    state: &mut MeterVee,
    now: DateTime<Utc>,
) -> Option<(MeterSerial, String)> {
    if !state.dirty {
        return None;
    }
    let json = serde_json::to_string(&state.history).ok()?;
    state.dirty = false;
    state.saved_at = now;
    Some((meter.clone(), json))
}
