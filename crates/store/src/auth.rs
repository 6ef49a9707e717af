//! API tokens (migration `0003_auth`): who may call the REST API, and as what.
//!
//! A token is a secret of 32 random bytes handed to its holder once. The store never sees it:
//! callers pass its SHA-256 ([`ApiToken::hash`]), which is what a request's token is looked up
//! by. Tokens are never deleted; a revoked one stays for the record.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use crate::{Result, Store, StoreError, from_ms, from_ms_opt, ms};

/// What a token may do. The web layer decides what each role grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including managing tokens.
    Admin,
    /// Read everything, edit intervals, close exceptions, send commands.
    Operator,
    /// Read only.
    Reader,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Reader];

    /// The name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Reader => "reader",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`Role`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (admin, operator or reader)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// A stored token (without the secret, which is never stored).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// A public name for the token (for listing and revoking), not the secret.
    pub id: String,
    /// SHA-256 of the secret.
    pub hash: [u8; 32],
    pub role: Role,
    /// What the token is for, for people ("billing export", "first admin token").
    pub label: String,
    pub created_at: DateTime<Utc>,
    /// `None`: never expires.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is not secret, but it is a lookup key: keep it out of logs all the same.
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("label", &self.label)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl ApiToken {
    /// Neither revoked nor expired at `now` (a token expiring exactly at `now` is expired).
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

const TOKEN_COLUMNS: &str = "id, token_hash, role, label, created_at, expires_at, revoked_at";

type RawToken = (
    String,
    Vec<u8>,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

fn raw_token(r: &Row<'_>) -> rusqlite::Result<RawToken> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn token_from_raw(raw: RawToken) -> Result<ApiToken> {
    let (id, hash, role, label, created, expires, revoked) = raw;
    let hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("token {id}: hash of {} bytes", hash.len())))?;
    let role = role
        .parse()
        .map_err(|e: UnknownRole| StoreError::Corrupt(format!("token {id}: {e}")))?;
    Ok(ApiToken {
        id,
        hash,
        role,
        label,
        created_at: from_ms(created)?,
        expires_at: from_ms_opt(expires)?,
        revoked_at: from_ms_opt(revoked)?,
    })
}

impl Store {
    /// Stores a new token. An id or hash already stored is a [`StoreError::Conflict`] (the
    /// caller made a new random secret, so that means a bug or a replay, never a retry).
    pub fn create_api_token(&self, token: &ApiToken) -> Result<()> {
        if token.id.is_empty() {
            return Err(StoreError::Invalid("a token needs an id".into()));
        }
        if token.expires_at.is_some_and(|e| e <= token.created_at) {
            return Err(StoreError::Invalid(format!(
                "token {} would expire before it is created",
                token.id
            )));
        }
        let conn = self.conn();
        let inserted = conn
            .prepare_cached(
                "INSERT INTO api_token (id, token_hash, role, label, created_at, expires_at, \
                 revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                token.id,
                token.hash.as_slice(),
                token.role.as_str(),
                token.label,
                ms(token.created_at),
                token.expires_at.map(ms),
                token.revoked_at.map(ms),
            ])?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a token with id {} or the same secret exists",
                token.id
            )));
        }
        Ok(())
    }

    /// The token whose secret hashes to `hash`, valid or not.
    pub fn api_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiToken>> {
        let conn = self.conn();
        let raw = conn
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_token WHERE token_hash = ?1"
            ))?
            .query_row([hash.as_slice()], raw_token)
            .optional()?;
        raw.map(token_from_raw).transpose()
    }

    /// Every token ever created (revoked and expired ones too), oldest first.
    pub fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_token ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map([], raw_token)?;
        rows.map(|r| token_from_raw(r?)).collect()
    }

    /// Revokes token `id` at `at`. Returns `false` if it was already revoked (its first
    /// revocation time is kept); an unknown id is [`StoreError::NotFound`].
    pub fn revoke_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let conn = self.conn();
        let changed = conn
            .prepare_cached(
                "UPDATE api_token SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, ms(at)])?;
        if changed == 1 {
            return Ok(true);
        }
        let known: Option<i64> = conn
            .prepare_cached("SELECT 1 FROM api_token WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        match known {
            Some(_) => Ok(false),
            None => Err(StoreError::NotFound(format!("token {id}"))),
        }
    }
}
