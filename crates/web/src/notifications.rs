//! Where consumers are told things (their mobile and email), and what they were told: the
//! notification outbox with each message's state, attempts and last error.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::Role;
use store::notify::Notification;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::{ist, ist_opt};

/// A consumer's addresses.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactView {
    /// `+91` and ten digits.
    #[schema(example = "+919812345678")]
    pub mobile: Option<String>,
    pub email: Option<String>,
}

/// A consumer's mobile and email.
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/contact",
    tag = "consumers",
    params(("consumer_no" = String, Path, description = "Consumer number")),
    responses(
        (status = 200, description = "The addresses", body = ContactView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "None recorded", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn contact(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    caller.require(Role::Reader)?;
    let key = no.clone();
    let found = state.db(move |s| s.contact(&key)).await?;
    let c = found.ok_or_else(|| ApiError::not_found(format!("no contact recorded for {no}")))?;
    Ok(Json(ContactView {
        mobile: c.mobile,
        email: c.email,
    }))
}

/// Sets a consumer's mobile and email (either may be null: that channel is not used).
#[utoipa::path(
    put,
    path = "/api/v1/consumers/{consumer_no}/contact",
    tag = "consumers",
    params(("consumer_no" = String, Path, description = "Consumer number")),
    request_body = ContactView,
    responses(
        (status = 200, description = "Stored", body = ContactView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 422, description = "Not a mobile number or email address", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_contact(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Json(body): Json<ContactView>,
) -> Result<Json<ContactView>, ApiError> {
    caller.require(Role::Operator)?;
    let now = state.now();
    let (mobile, email) = (body.mobile.clone(), body.email.clone());
    state
        .db(move |s| {
            if s.mdm_consumer(&no)?.is_none() {
                return Err(store::StoreError::NotFound(format!("consumer {no}")));
            }
            s.contact_put(&no, mobile.as_deref(), email.as_deref(), now)
        })
        .await?;
    Ok(Json(body))
}

/// A message to a consumer.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub seq: u64,
    pub key: String,
    /// `sms` or `email`.
    pub channel: String,
    pub consumer_no: String,
    /// `recharge_confirmed`, `low_balance`, `disconnection_notice`, …
    pub kind: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub body: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The SMS operator's message id or the mail relay's queue id.
    pub provider_id: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        NotificationView {
            seq: n.seq,
            key: n.key,
            channel: n.channel.name().into(),
            consumer_no: n.consumer_no,
            kind: n.kind,
            recipient: n.recipient,
            subject: n.subject,
            body: n.body,
            state: n.state,
            attempts: n.attempts,
            last_error: n.last_error,
            provider_id: n.provider_id,
            created_at: ist(n.created_at),
            sent_at: ist_opt(n.sent_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    pub consumer_no: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub state: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    pub next_cursor: Option<String>,
}

const CURSOR: &str = "notifications";

/// Messages to consumers, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "consumers",
    params(NotificationQuery),
    responses(
        (status = 200, description = "Messages", body = NotificationPage),
        (status = 400, description = "Bad state, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<NotificationQuery>,
) -> Result<Json<NotificationPage>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<u64>(CURSOR, q.cursor.as_deref())?.unwrap_or(0);
    if let Some(s) = q.state.as_deref()
        && !["pending", "sent", "failed"].contains(&s)
    {
        return Err(ApiError::bad_request(
            "invalid_state",
            format!("state {s:?}: pending, sent or failed"),
        ));
    }
    let rows = state
        .db(move |s| {
            s.notifications(
                q.consumer_no.as_deref(),
                q.state.as_deref(),
                after,
                limit + 1,
            )
        })
        .await?;
    let (rows, next) = paging::split(rows, limit, CURSOR, |n| n.seq);
    Ok(Json(NotificationPage {
        items: rows.into_iter().map(NotificationView::from).collect(),
        next_cursor: next,
    }))
}
