//! The thresholds of the VEE rules, with defaults for a 230 V single-phase residential supply,
//! and one set of them per meter category.
//!
//! In the TOML file (every field may be left out):
//!
//! ```toml
//! [vee.default]
//! spike_factor = 10.0
//!
//! [vee.categories.commercial]
//! spike_floor_w = 50000
//! ```
//!
//! A category's table is filled from [`VeeConfig::default`], not from `[vee.default]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Thresholds of every VEE rule. Durations are in seconds, energies in Wh, power in W.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VeeConfig {
    /// Spike: an interval's import above `spike_factor` × the meter's recent typical interval
    /// (the median of its last [`spike_recent_days`](Self::spike_recent_days) days) …
    pub spike_factor: f64,
    /// … and above this average power over the interval (so a meter that mostly reads 0 is not
    /// flagged for switching a kettle on). 10 kW: beyond the sanctioned load of nearly every
    /// residential connection.
    pub spike_floor_w: i64,
    /// Days of history the recent typical interval is taken from.
    pub spike_recent_days: usize,
    /// High/low: how many of the latest like days (same day type) a day's total is compared
    /// with, at most [`History::MAX_LIKE_DAYS`](super::History::MAX_LIKE_DAYS).
    pub like_days: usize,
    /// High/low is judged only with at least this many complete like days in the history.
    pub like_days_min: usize,
    /// High: a day's total above `high_factor` × the like-day mean.
    pub high_factor: f64,
    /// Low: a day's total below `low_factor` × the like-day mean.
    pub low_factor: f64,
    /// Like-day means below this are too small to judge: "high" is measured against at least
    /// this much, and "low" is not judged at all.
    pub like_day_floor_wh: i64,
    /// Zero consumption while the supply is on: a run of intervals with no import (and no
    /// export) while the voltage is in range, at least this long. 4 h: a household's
    /// refrigerator alone draws something every few hours.
    pub zero_with_voltage_min_s: i64,
    /// Sum check: a day's intervals may differ from its register advance by this fraction of
    /// the advance …
    pub sum_check_tolerance_rel: f64,
    /// … or by this many Wh (VAh), whichever is more. 100: each of 96 intervals may be cut to
    /// a whole Wh on its own.
    pub sum_check_tolerance_wh: i64,
    /// Voltage out of range: an average voltage (any phase) below this. 180 V is 22 % under
    /// the 230 V nominal: far outside the ±6 % a supply should hold, so ordinary rural
    /// under-voltage is not flagged, yet still inside the range where a meter measures.
    pub voltage_min_v: f64,
    /// … or above this: 270 V, 17 % over nominal, near the top of a meter's operating range
    /// (1.2 Vref = 276 V); beyond it the reading or the supply is faulty.
    pub voltage_max_v: f64,
    /// Future timestamp: an interval ending more than this after `now`. 300 s leaves room for
    /// a meter clock that runs ahead by up to [`max_clock_drift_s`](Self::max_clock_drift_s).
    pub future_tolerance_s: i64,
    /// Clock drift: the head-end sets a meter's clock when it is 30 s off; a drift it reports
    /// above this (120 s, 13 % of a 15-minute interval) means intervals were cut at the wrong
    /// times.
    pub max_clock_drift_s: i64,
    /// Cumulative registers roll over to 0 at this value: 10^9 Wh is a register of six kWh
    /// digits and three decimals (999 999.999 kWh).
    pub register_rollover_wh: i64,
    /// A register that went down is taken to have rolled over only if the advance that implies
    /// is below this fraction of the rollover value (1 % of 10^9 Wh = 10 MWh a day).
    pub rollover_max_fraction: f64,
    /// Gaps up to this long between two known intervals are filled by linear interpolation;
    /// longer ones from like days. 2 h.
    pub short_gap_max_s: i64,
    /// Gaps longer than this are not estimated at all (31 days).
    pub max_estimate_gap_s: i64,
}

impl Default for VeeConfig {
    fn default() -> Self {
        VeeConfig {
            spike_factor: 10.0,
            spike_floor_w: 10_000,
            spike_recent_days: 3,
            like_days: 4,
            like_days_min: 3,
            high_factor: 3.0,
            low_factor: 0.25,
            like_day_floor_wh: 1_000,
            zero_with_voltage_min_s: 4 * 3600,
            sum_check_tolerance_rel: 0.01,
            sum_check_tolerance_wh: 100,
            voltage_min_v: 180.0,
            voltage_max_v: 270.0,
            future_tolerance_s: 300,
            max_clock_drift_s: 120,
            register_rollover_wh: 1_000_000_000,
            rollover_max_fraction: 0.01,
            short_gap_max_s: 2 * 3600,
            max_estimate_gap_s: 31 * 86_400,
        }
    }
}

/// VEE thresholds per meter category ("residential", "commercial", "ct", …), with a default for
/// categories not listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VeeConfigs {
    pub default: VeeConfig,
    pub categories: BTreeMap<String, VeeConfig>,
}

impl VeeConfigs {
    /// The thresholds for a category, or the default ones.
    pub fn for_category(&self, category: &str) -> &VeeConfig {
        self.categories.get(category).unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_fall_back_to_the_default() {
        let mut configs = VeeConfigs::default();
        let ct = VeeConfig {
            spike_floor_w: 500_000,
            ..VeeConfig::default()
        };
        configs.categories.insert("ct".into(), ct.clone());
        assert_eq!(configs.for_category("ct"), &ct);
        assert_eq!(configs.for_category("residential"), &VeeConfig::default());
    }

    #[test]
    fn missing_settings_take_their_defaults() {
        let json = r#"{"default": {"spike_factor": 5.0}, "categories": {"ct": {"spike_floor_w": 500000}}}"#;
        let configs: VeeConfigs = serde_json::from_str(json).unwrap();
        assert_eq!(configs.default.spike_factor, 5.0);
        assert_eq!(configs.default.voltage_min_v, 180.0);
        let ct = configs.for_category("ct");
        assert_eq!((ct.spike_floor_w, ct.spike_factor), (500_000, 10.0));
        assert_eq!(
            serde_json::from_str::<VeeConfigs>("{}").unwrap(),
            VeeConfigs::default()
        );
    }
}
