//! API tokens: stored by hash only, found by hash, listed, revoked once, valid until expiry.

use chrono::{DateTime, Duration, Utc};
use store::{ApiToken, Role, Store, StoreError};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.db")).unwrap();
    (dir, store)
}

fn token(id: &str, hash_byte: u8, role: Role, expires_at: Option<DateTime<Utc>>) -> ApiToken {
    ApiToken {
        id: id.into(),
        hash: [hash_byte; 32],
        role,
        label: format!("{id} label"),
        created_at: at("2026-12-01T00:00:00Z"),
        expires_at,
        revoked_at: None,
    }
}

#[test]
fn a_token_is_found_by_its_hash_with_everything_stored() {
    let (_dir, store) = store();
    let expires = at("2027-01-01T00:00:00Z");
    let t = token("t1", 7, Role::Operator, Some(expires));
    store.create_api_token(&t).unwrap();
    store
        .create_api_token(&token("t2", 8, Role::Reader, None))
        .unwrap();

    let found = store.api_token_by_hash(&[7; 32]).unwrap().unwrap();
    assert_eq!(found, t);
    assert_eq!(found.role, Role::Operator);
    assert_eq!(found.expires_at, Some(expires));
    assert_eq!(store.api_token_by_hash(&[9; 32]).unwrap(), None);
    let ids: Vec<String> = store
        .api_tokens()
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["t1", "t2"]);
}

#[test]
fn the_same_id_or_hash_twice_is_a_conflict() {
    let (_dir, store) = store();
    store
        .create_api_token(&token("t1", 1, Role::Admin, None))
        .unwrap();
    assert!(matches!(
        store.create_api_token(&token("t1", 2, Role::Admin, None)),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_api_token(&token("t2", 1, Role::Admin, None)),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.api_tokens().unwrap().len(), 1);
    // nor does a token that expires before it exists go in
    let t = token("t3", 3, Role::Reader, Some(at("2026-11-30T00:00:00Z")));
    assert!(matches!(
        store.create_api_token(&t),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn revoking_keeps_the_first_time_and_the_row() {
    let (_dir, store) = store();
    store
        .create_api_token(&token("t1", 1, Role::Reader, None))
        .unwrap();
    let first = at("2026-12-02T10:00:00Z");
    assert!(store.revoke_api_token("t1", first).unwrap());
    assert!(
        !store
            .revoke_api_token("t1", first + Duration::hours(1))
            .unwrap()
    );
    let t = store.api_token_by_hash(&[1; 32]).unwrap().unwrap();
    assert_eq!(t.revoked_at, Some(first));
    assert!(!t.is_valid_at(first));
    assert!(matches!(
        store.revoke_api_token("nope", first),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.api_tokens().unwrap().len(), 1);
}

#[test]
fn validity_ends_at_expiry() {
    let expires = at("2026-12-08T00:00:00Z");
    let t = token("t1", 1, Role::Reader, Some(expires));
    assert!(t.is_valid_at(expires - Duration::milliseconds(1)));
    assert!(!t.is_valid_at(expires));
    let forever = token("t2", 2, Role::Reader, None);
    assert!(forever.is_valid_at(at("2126-01-01T00:00:00Z")));
}

#[test]
fn roles_round_trip_by_name() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
    }
    assert!("root".parse::<Role>().is_err());
}

#[test]
fn the_token_table_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urja.db");
    {
        let store = Store::open(&path).unwrap();
        store
            .create_api_token(&token("t1", 1, Role::Admin, None))
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.api_tokens().unwrap()[0].role, Role::Admin);
}
