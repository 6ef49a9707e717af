//! Paging on every list: `limit` (default 100, at most 1000) and an opaque `cursor`; answers are
//! `{"items": [...], "next_cursor": ...}` with `next_cursor` null on the last page.
//!
//! A cursor is the key of the last item handed out (hex of a small JSON value, tagged with what
//! kind of list it belongs to), so a walk sees every item once even while items are added
//! after the current position. Keys are what the store orders the list by.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// The checked `limit` parameter.
pub fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit {n}: give 1 to {MAX_LIMIT}"),
        )),
    }
}

/// A cursor for a list of kind `kind` positioned after `key`.
pub fn encode<K: Serialize>(kind: &str, key: &K) -> String {
    // Serialising a tuple of a string and plain keys cannot fail.
    hex::encode(serde_json::to_vec(&(kind, key)).unwrap_or_default())
}

/// The key in `cursor`, which must have been made for a list of kind `kind`.
pub fn decode<K: DeserializeOwned>(
    kind: &str,
    cursor: Option<&str>,
) -> Result<Option<K>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "invalid_cursor",
            "the cursor is not one this list handed out",
        )
    };
    let bytes = hex::decode(cursor).map_err(|_| bad())?;
    let (found, key): (String, K) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if found != kind {
        return Err(bad());
    }
    Ok(Some(key))
}

/// One page of `rows` (ordered by `key`, ascending): those after `after`, at most `limit`, and
/// the key to continue from when more are left.
pub fn page_after<T, K: Ord>(
    rows: Vec<T>,
    key: impl Fn(&T) -> K,
    after: Option<&K>,
    limit: u32,
) -> (Vec<T>, Option<K>) {
    let limit = limit as usize;
    let mut items: Vec<T> = rows
        .into_iter()
        .filter(|r| after.is_none_or(|a| &key(r) > a))
        .take(limit + 1)
        .collect();
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(&key)
    } else {
        None
    };
    (items, next)
}

/// A page from rows the store answered for `limit + 1`: at most `limit` of them, and the cursor
/// (of kind `kind`, at the last row's key) when there were more.
pub fn split<T, K: Serialize>(
    mut rows: Vec<T>,
    limit: u32,
    kind: &str,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| encode(kind, &key(r)))
    } else {
        None
    };
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_checked() {
        let c = encode("t", &(12_i64, 7_u16));
        assert_eq!(decode::<(i64, u16)>("t", Some(&c)).unwrap(), Some((12, 7)));
        assert_eq!(decode::<(i64, u16)>("t", None).unwrap(), None);
        for bad in ["zz", "", "7b7d", &encode("other", &(1_i64, 1_u16))] {
            assert_eq!(
                decode::<(i64, u16)>("t", Some(bad)).unwrap_err().code,
                "invalid_cursor"
            );
        }
    }

    #[test]
    fn pages_walk_every_row_once() {
        let rows: Vec<u32> = (0..25).collect();
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let (items, next) = page_after(rows.clone(), |r| *r, after.as_ref(), 10);
            seen.extend(items);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, rows);
        // an exact multiple ends without an empty last page
        let (items, next) = page_after((0..10).collect::<Vec<u32>>(), |r| *r, None, 10);
        assert_eq!(items.len(), 10);
        assert_eq!(next, None);
    }

    #[test]
    fn a_page_of_limit_plus_one_rows_continues_after_its_last() {
        let (items, next) = split((0..11).collect::<Vec<u64>>(), 10, "k", |r| *r);
        assert_eq!(items.len(), 10);
        assert_eq!(decode::<u64>("k", next.as_deref()).unwrap(), Some(9));
        let (items, next) = split((0..10).collect::<Vec<u64>>(), 10, "k", |r| *r);
        assert_eq!((items.len(), next), (10, None));
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), 100);
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1001)).is_err());
    }
}
