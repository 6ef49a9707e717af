//! Validation, estimation and editing (VEE) of interval data: pure functions over series.
