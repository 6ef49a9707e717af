//! Where consumers are told things (their mobile, email and language), and what they were
//! told: the notification outbox with each message's state, attempts and last error, and each
//! message's delivery log. The text of a message that carries a one-time code or a password is
//! never shown.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::Role;
use store::notify::{DeliveryAttempt, Language, Notification, WITHHELD};
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
    /// `en` (the default) or `hi`: the language of SMS and email. Left out of a PUT: unchanged.
    #[schema(example = "hi")]
    pub language: Option<String>,
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
        language: Some(c.language.code().into()),
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
    let language = body
        .language
        .as_deref()
        .map(|l| {
            Language::from_code(l).ok_or_else(|| {
                ApiError::unprocessable("invalid_language", format!("language {l:?}: en or hi"))
            })
        })
        .transpose()?;
    let (mobile, email) = (body.mobile.clone(), body.email.clone());
    let stored = state
        .db(move |s| {
            if s.mdm_consumer(&no)?.is_none() {
                return Err(store::StoreError::NotFound(format!("consumer {no}")));
            }
            s.contact_put(&no, mobile.as_deref(), email.as_deref(), now)?;
            if let Some(language) = language {
                s.contact_set_language(&no, language, now)?;
            }
            s.contact(&no)
        })
        .await?;
    Ok(Json(ContactView {
        language: stored.map(|c| c.language.code().into()),
        ..body
    }))
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
    /// The text; withheld for a message that carries a one-time code or a password.
    pub body: String,
    /// The message carries a secret (its body is never shown).
    pub sensitive: bool,
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
            body: if n.sensitive {
                WITHHELD.to_string()
            } else {
                n.body
            },
            sensitive: n.sensitive,
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

/// One attempt to deliver a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1 for the first.
    pub attempt: u32,
    pub at: String,
    /// `sent`, `retry` (a temporary failure, tried again later) or `failed` (given up).
    pub outcome: String,
    /// The provider's id (or the file it was kept in) when sent, the error otherwise.
    pub detail: String,
}

impl From<DeliveryAttempt> for AttemptView {
    fn from(a: DeliveryAttempt) -> Self {
        AttemptView {
            attempt: a.attempt,
            at: ist(a.at),
            outcome: a.outcome,
            detail: a.detail,
        }
    }
}

/// A message with its delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDetail {
    #[serde(flatten)]
    pub message: NotificationView,
    pub attempts_log: Vec<AttemptView>,
}

/// One message to a consumer, with every attempt to deliver it.
#[utoipa::path(
    get,
    path = "/api/v1/notifications/{seq}",
    tag = "consumers",
    params(("seq" = u64, Path, description = "The message's number")),
    responses(
        (status = 200, description = "The message and its delivery log", body = NotificationDetail),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn one(
    caller: Caller,
    State(state): State<AppState>,
    Path(seq): Path<String>,
) -> Result<Json<NotificationDetail>, ApiError> {
    caller.require(Role::Reader)?;
    let missing = || ApiError::not_found(format!("no message {seq}"));
    let n: u64 = seq.parse().map_err(|_| missing())?;
    let found = state
        .db(move |s| {
            let Some(message) = s.notification(n)? else {
                return Ok(None);
            };
            Ok(Some((message, s.notification_attempts(n)?)))
        })
        .await?;
    let (message, attempts) = found.ok_or_else(missing)?;
    Ok(Json(NotificationDetail {
        message: message.into(),
        attempts_log: attempts.into_iter().map(AttemptView::from).collect(),
    }))
}
