//! Managing API tokens (admin): list, create (the secret is answered once), revoke.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use store::{ApiToken, Role, StoreError};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, IssueError, issue_token};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::meters::PageQuery;
use crate::paging;
use crate::time::{ist, ist_opt};

/// A token as stored (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Token {
    #[schema(example = "tok_3f2a9c0d1e4b5a69")]
    pub id: String,
    /// `admin`, `operator` or `reader`.
    pub role: String,
    pub label: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Neither revoked nor expired now.
    pub valid: bool,
}

impl Token {
    fn new(t: &ApiToken, now: chrono::DateTime<chrono::Utc>) -> Self {
        Token {
            id: t.id.clone(),
            role: t.role.to_string(),
            label: t.label.clone(),
            created_at: ist(t.created_at),
            expires_at: ist_opt(t.expires_at),
            revoked_at: ist_opt(t.revoked_at),
            valid: t.is_valid_at(now),
        }
    }
}

/// A page of tokens, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPage {
    pub items: Vec<Token>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A token to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// `admin`, `operator` or `reader`.
    #[schema(example = "reader")]
    pub role: String,
    /// What it is for.
    #[serde(default)]
    pub label: String,
    /// Days until it expires (1 to 3660); absent: it does not expire.
    pub expires_days: Option<u32>,
}

/// A new token with its secret, which is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// `Authorization: Bearer <secret>`. Not stored: it cannot be shown again.
    pub secret: String,
    pub token: Token,
}

const CURSOR: &str = "tokens";
const MAX_LABEL: usize = 200;

/// Every token (revoked and expired ones too), oldest first (admin).
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of tokens", body = TokenPage),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<Json<TokenPage>, ApiError> {
    caller.require(Role::Admin)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<(i64, String)>(CURSOR, q.cursor.as_deref())?;
    let rows = state.db(|s| s.api_tokens()).await?;
    let now = state.now();
    let (items, next) = paging::page_after(
        rows,
        |t| (t.created_at.timestamp_millis(), t.id.clone()),
        after.as_ref(),
        limit,
    );
    Ok(Json(TokenPage {
        items: items.iter().map(|t| Token::new(t, now)).collect(),
        next_cursor: next.map(|k| paging::encode(CURSOR, &k)),
    }))
}

/// Makes a token (admin); its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "The token and its secret", body = CreatedToken),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 422, description = "Bad role, label or expiry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.require(Role::Admin)?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: store::UnknownRole| ApiError::unprocessable("invalid_token", e.to_string()))?;
    if body.label.len() > MAX_LABEL || body.label.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_token",
            format!("a label is at most {MAX_LABEL} bytes of text"),
        ));
    }
    let now = state.now();
    let expires_at = match body.expires_days {
        None => None,
        Some(d @ 1..=3660) => Some(now + Duration::days(i64::from(d))),
        Some(d) => {
            return Err(ApiError::unprocessable(
                "invalid_token",
                format!("expires_days {d}: give 1 to 3660"),
            ));
        }
    };
    let label = body.label.clone();
    let issued = state
        .db(
            move |s| match issue_token(s, role, &label, expires_at, now) {
                Ok(t) => Ok(Ok(t)),
                Err(IssueError::Store(e)) => Err(e),
                Err(e @ IssueError::Random(_)) => Ok(Err(e)),
            },
        )
        .await?
        .map_err(|e| ApiError::internal("issuing a token", &e))?;
    tracing::info!(by = %caller.who(), token = %issued.token.id, role = %role, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: Token::new(&issued.token, now),
            secret: issued.secret,
        }),
    ))
}

/// Revokes a token (admin). Revoking a revoked token changes nothing.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id (not its secret)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let now = state.now();
    let result = state
        .db({
            let id = id.clone();
            move |s| Ok(s.revoke_api_token(&id, now))
        })
        .await?;
    match result {
        Ok(_) => {
            tracing::info!(by = %caller.who(), token = %id, "API token revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found(format!("no token {id}"))),
        Err(e) => Err(e.into()),
    }
}
