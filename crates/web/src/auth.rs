//! Bearer tokens: issuing one (32 random bytes, shown once, stored as its SHA-256), and the
//! [`Caller`] every staff handler takes, which authenticates the request and knows its role.
//!
//! Roles grant in order: `admin` ⊇ `operator` ⊇ `reader`. A consumer's portal session
//! ([`crate::portal`], secrets starting `urja_cs_`) is no staff token: [`Caller`] refuses it
//! (403) before any handler runs, so no staff route can forget to.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use store::{ApiToken, Role, Store, StoreError};

use crate::AppState;
use crate::error::ApiError;

/// The prefix of every secret, so a leaked one is recognisable (e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "urja_";

/// A token just made. The secret exists only here: print it once and drop it.
pub struct IssuedToken {
    /// Give this to the holder (`Authorization: Bearer <secret>`).
    pub secret: String,
    /// What was stored.
    pub token: ApiToken,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("secret", &"<redacted>")
            .field("token", &self.token)
            .finish()
    }
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error("storing the token: {0}")]
    Store(#[from] StoreError),
}

/// The SHA-256 of a secret, as stored and looked up. A fast hash is right here: the secret is
/// 32 random bytes, so there is nothing to guess that a slow hash would protect.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Makes a new token of `role` and stores its hash. The returned secret is never stored.
pub fn issue_token(
    store: &Store,
    role: Role,
    label: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<IssuedToken, IssueError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| IssueError::Random(e.to_string()))?;
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| IssueError::Random(e.to_string()))?;
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let token = ApiToken {
        id: format!("tok_{}", hex::encode(id)),
        hash: token_hash(&secret),
        role,
        label: label.to_string(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    store.create_api_token(&token)?;
    Ok(IssuedToken { secret, token })
}

/// Whether `held` may do what `needed` may.
pub fn grants(held: Role, needed: Role) -> bool {
    fn rank(r: Role) -> u8 {
        match r {
            Role::Reader => 0,
            Role::Operator => 1,
            Role::Admin => 2,
        }
    }
    rank(held) >= rank(needed)
}

/// The authenticated caller of a request: a valid (unrevoked, unexpired) token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub role: Role,
    pub label: String,
}

impl Caller {
    /// `Ok` if the caller's role grants `needed`; 403 otherwise.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if grants(self.role, needed) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {needed} role; the token has the {} role",
                self.role
            )))
        }
    }

    /// Who did it, for audit records: `token tok_… (label)`.
    pub fn who(&self) -> String {
        if self.label.is_empty() {
            format!("token {}", self.token_id)
        } else {
            format!("token {} ({})", self.token_id, self.label)
        }
    }
}

/// Secrets are 69 characters; anything much longer is not one of ours (and is not hashed).
const MAX_SECRET_LEN: usize = 256;

/// The secret of `Authorization: Bearer <secret>`, bounded; 401 without one.
pub(crate) fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let secret = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => {
            return Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        }
    };
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return Err(ApiError::unauthorized("invalid, expired or revoked token"));
    }
    Ok(secret)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let secret = bearer(parts)?;
        if secret.starts_with(crate::portal::SESSION_PREFIX) {
            return Err(ApiError::forbidden(
                "a consumer's portal session opens only the /api/v1/portal routes",
            ));
        }
        let hash = token_hash(secret);
        let token = state.db(move |s| s.api_token_by_hash(&hash)).await?;
        let now = state.now();
        match token {
            Some(t) if t.is_valid_at(now) => Ok(Caller {
                token_id: t.id,
                role: t.role,
                label: t.label,
            }),
            _ => Err(ApiError::unauthorized("invalid, expired or revoked token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_downwards_only() {
        assert!(grants(Role::Admin, Role::Operator));
        assert!(grants(Role::Admin, Role::Reader));
        assert!(grants(Role::Operator, Role::Reader));
        assert!(grants(Role::Reader, Role::Reader));
        assert!(!grants(Role::Reader, Role::Operator));
        assert!(!grants(Role::Operator, Role::Admin));
    }

    #[test]
    fn issued_secrets_are_stored_by_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
        let now = Utc::now();
        let a = issue_token(&store, Role::Reader, "a", None, now).unwrap();
        let b = issue_token(&store, Role::Reader, "b", None, now).unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(TOKEN_PREFIX));
        assert_eq!(a.secret.len(), TOKEN_PREFIX.len() + 64);
        let found = store.api_token_by_hash(&token_hash(&a.secret)).unwrap();
        assert_eq!(found.unwrap().id, a.token.id);
        assert!(!format!("{a:?}").contains(&a.secret));
        // the secret is nowhere in the database file
        drop(store);
        let bytes = std::fs::read(dir.path().join("urja.sqlite")).unwrap();
        let wal = std::fs::read(dir.path().join("urja.sqlite-wal")).unwrap_or_default();
        for file in [bytes, wal] {
            assert!(
                !file
                    .windows(a.secret.len())
                    .any(|w| w == a.secret.as_bytes())
            );
        }
    }
}
