//! Deterministic, stateless randomness: every "random" quantity of the simulator is a hash of
//! (seed, meter, what, when), so nothing random is stored and the same seed gives the same fleet.

/// SplitMix64 finaliser: a fast, well-mixed 64-bit permutation.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of a seed and a list of words (order matters).
pub fn hash(seed: u64, words: &[u64]) -> u64 {
    let mut h = mix64(seed ^ 0x5851_f42d_4c95_7f2d);
    for w in words {
        h = mix64(h ^ mix64(w.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    }
    h
}

/// A number uniformly in `[0, 1)` from a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A number in `[-1, 1)` from a hash.
pub fn signed_unit(h: u64) -> f64 {
    unit(h) * 2.0 - 1.0
}

/// Domain-separation tags, so two quantities never share a hash by accident.
pub mod tag {
    pub const KEY_EK: u64 = 1;
    pub const KEY_AK: u64 = 2;
    pub const KEY_LLS: u64 = 3;
    pub const KEY_HLS_US: u64 = 4;
    pub const KEY_HLS_PUSH: u64 = 5;
    pub const KEY_HLS_FW: u64 = 6;
    pub const SYSTEM_TITLE: u64 = 7;
    pub const KEY_MASTER: u64 = 8;
    pub const FLAKY: u64 = 32;
    pub const SANCTIONED: u64 = 10;
    pub const CURVE: u64 = 11;
    pub const NOISE: u64 = 12;
    pub const INSTALL: u64 = 13;
    pub const OUTAGE: u64 = 14;
    pub const PF: u64 = 15;
    pub const VOLTAGE: u64 = 16;
    pub const DRIFT: u64 = 17;
    pub const MAGNET: u64 = 18;
    pub const COVER: u64 = 19;
    pub const KIND: u64 = 20;
    pub const DAY_ENERGY: u64 = 21;
    pub const DAY_PF: u64 = 22;
    pub const FAULT: u64 = 30;
    pub const FAULT_PARAM: u64 = 31;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_deterministic_and_order_sensitive() {
        assert_eq!(hash(7, &[1, 2]), hash(7, &[1, 2]));
        assert_ne!(hash(7, &[1, 2]), hash(7, &[2, 1]));
        assert_ne!(hash(7, &[1, 2]), hash(8, &[1, 2]));
        let u = unit(hash(1, &[3]));
        assert!((0.0..1.0).contains(&u));
    }
}
