//! The consumer portal's API (use case 15, registration; the login the portal's pages build
//! on): no staff token anywhere.
//!
//! 1. `POST /api/v1/portal/registrations` with a consumer number and the registered mobile
//!    (RMN) or email: a six-digit code from the operating system's CSPRNG is sent there, if
//!    they match. The answer is the same whether they do or not (202, a registration id);
//!    only the code's owner can go on.
//! 2. `POST …/registrations/{id}/verify` with the code: the portal account is made (or reset)
//!    and its login id (the consumer number) and a random default password are sent the same
//!    way. `POST …/registrations/{id}/resend`: a new code, not within a minute of the last.
//! 3. `POST /api/v1/portal/login`: a session token (`urja_cs_…`), bound to the consumer. With
//!    the default password the answer says a change is required, and the session opens
//!    nothing but `GET /api/v1/portal/me` and `POST /api/v1/portal/password` until it is made.
//!
//! Codes and passwords are kept only as Argon2id hashes (made on the blocking pool), session
//! secrets as SHA-256 (they have full entropy), and none of them is ever logged. The limits
//! ([`PortalRules`]) are applied by the store atomically.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use notify::{Notice, Secret, enqueue_on};
use serde::{Deserialize, Serialize};
use store::Store;
use store::notify::{Channel, valid_email, valid_mobile};
use store::portal::{Guess, LoginGate, NewChallenge, NewSession, PortalRules, Sending};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{bearer, token_hash};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path};
use crate::time::ist;

/// The prefix of a consumer session's secret (staff tokens are `urja_` and hex).
pub const SESSION_PREFIX: &str = "urja_cs_";

/// The routes a session whose password is still the default one may use.
const BEFORE_CHANGE: [&str; 2] = ["/api/v1/portal/me", "/api/v1/portal/password"];

/// A password's length in characters.
const PASSWORD_MIN: usize = 10;
const PASSWORD_MAX: usize = 128;

/// Unambiguous letters and digits (no 0/O, 1/l/I) for default passwords.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

fn rules() -> PortalRules {
    PortalRules::default()
}

fn random(buf: &mut [u8]) -> Result<(), ApiError> {
    getrandom::fill(buf).map_err(|e| ApiError::internal("no randomness from the system", &e))
}

/// Six decimal digits, uniformly (rejection sampling).
fn new_code() -> Result<Secret, ApiError> {
    const LIMIT: u32 = u32::MAX - u32::MAX % 1_000_000;
    loop {
        let mut b = [0u8; 4];
        random(&mut b)?;
        let x = u32::from_le_bytes(b);
        if x < LIMIT {
            return Ok(Secret::new(format!("{:06}", x % 1_000_000)));
        }
    }
}

/// Twelve characters of [`PASSWORD_ALPHABET`] in three groups (`k7Rm-Qx2p-Wd9z`), uniformly.
fn new_password() -> Result<Secret, ApiError> {
    let n = PASSWORD_ALPHABET.len();
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(14);
    while out.len() < 14 {
        let mut b = [0u8; 16];
        random(&mut b)?;
        for x in b.iter().map(|x| usize::from(*x)).filter(|x| *x < limit) {
            if out.len() == 4 || out.len() == 9 {
                out.push('-');
            }
            if out.len() < 14 {
                out.push(char::from(PASSWORD_ALPHABET[x % n]));
            }
        }
    }
    Ok(Secret::new(out))
}

/// A random public id: `prefix` and 16 hex digits.
fn new_id(prefix: &str) -> Result<String, ApiError> {
    let mut b = [0u8; 8];
    random(&mut b)?;
    Ok(format!("{prefix}{}", hex::encode(b)))
}

/// An Argon2id PHC string of `secret`.
fn hash_secret(secret: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::internal("a salt", &e))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal("hashing a secret", &e))
}

fn verify_secret(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash nobody knows the secret of, checked against for an unknown login id so that it
/// takes as long as a known one.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        new_id("decoy")
            .and_then(|s| hash_secret(&s))
            .unwrap_or_default()
    })
}

/// Runs `f` (hashing, the store) on the blocking pool.
async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
{
    let store = state.store().clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError::internal("a portal task failed", &e))?
}

fn notify_failed(e: notify::NotifyError) -> ApiError {
    ApiError::internal("writing a portal message to the outbox", &e)
}

fn too_soon(until: DateTime<Utc>) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_soon",
        format!(
            "no more codes to this consumer number and address before {}",
            ist(until)
        ),
    )
}

fn closed() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "registration_closed",
        "this registration has expired, run out of attempts or been used: start a new one",
    )
}

/// A registration request: the consumer number and the registered mobile (RMN) or email.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    #[schema(example = "C-100000001")]
    pub consumer_no: String,
    /// Ten digits, or `+91` and ten digits. Give this or `email`, not both.
    #[schema(example = "+919876543210")]
    pub mobile: Option<String>,
    pub email: Option<String>,
}

/// A registration started (whether or not the number and the address matched: the answer is
/// the same).
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationView {
    pub registration_id: String,
    /// `sms` or `email`: where the code goes, if the number and the address match.
    pub channel: String,
    pub expires_at: String,
    /// No resend before this.
    pub resend_after: String,
    pub message: String,
}

fn registration_view(c: &store::portal::Challenge) -> RegistrationView {
    RegistrationView {
        registration_id: c.id.clone(),
        channel: c.channel.name().into(),
        expires_at: ist(c.expires_at),
        resend_after: ist(c.resend_at(&rules())),
        message: format!(
            "if the consumer number and the {} match our records, a code has been sent there",
            match c.channel {
                Channel::Sms => "mobile number",
                Channel::Email => "email address",
            }
        ),
    }
}

/// The address asked for, normalised: `+91` and ten digits, or a lower-case email.
fn address(req: &RegistrationRequest) -> Result<(Channel, String), ApiError> {
    match (&req.mobile, &req.email) {
        (Some(m), None) => {
            let digits: String = m.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
            let mobile = if digits.len() == 10 {
                format!("+91{digits}")
            } else {
                digits
            };
            if valid_mobile(&mobile) {
                Ok((Channel::Sms, mobile))
            } else {
                Err(ApiError::unprocessable(
                    "invalid_mobile",
                    "the mobile number must be ten digits (starting 6 to 9), optionally after +91",
                ))
            }
        }
        (None, Some(e)) => {
            let email = e.trim().to_lowercase();
            if valid_email(&email) {
                Ok((Channel::Email, email))
            } else {
                Err(ApiError::unprocessable(
                    "invalid_email",
                    "that is not an email address",
                ))
            }
        }
        _ => Err(ApiError::unprocessable(
            "mobile_or_email",
            "give the registered mobile number or the email address (one of them)",
        )),
    }
}

/// Sends challenge `c`'s new `code` if it matched a consumer.
fn send_code(
    store: &Store,
    c: &store::portal::Challenge,
    code: Secret,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some(consumer_no) = &c.consumer_no else {
        return Ok(());
    };
    let notice = Notice::RegistrationCode {
        code,
        valid_minutes: u32::try_from(rules().code_ttl.num_minutes()).unwrap_or(10),
    };
    let key = format!("registration/{}/{}", c.id, c.sent_at.timestamp_millis());
    enqueue_on(store, consumer_no, c.channel, &key, &notice, now).map_err(notify_failed)?;
    Ok(())
}

/// Starts a registration (use case 15.1–15.2). No token: anyone may ask, and the answer does
/// not say whether the consumer number exists or the address is theirs.
#[utoipa::path(
    post,
    path = "/api/v1/portal/registrations",
    tag = "portal",
    request_body = RegistrationRequest,
    responses(
        (status = 202, description = "A code is sent if the number and the address match", body = RegistrationView),
        (status = 422, description = "Not a consumer number, mobile number or email address", body = ErrorBody),
        (status = 429, description = "Too many codes to this number and address in the hour", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Json(req): Json<RegistrationRequest>,
) -> Result<(StatusCode, Json<RegistrationView>), ApiError> {
    let asked_no = req.consumer_no.trim().to_string();
    if asked_no.is_empty() || asked_no.len() > 64 {
        return Err(ApiError::unprocessable(
            "invalid_consumer_no",
            "the consumer number must be 1 to 64 characters",
        ));
    }
    let (channel, address) = address(&req)?;
    let now = state.now();
    let view = blocking(&state, move |store| {
        let matched = store.contact(&asked_no)?.is_some_and(|c| match channel {
            Channel::Sms => c.mobile.as_deref() == Some(address.as_str()),
            Channel::Email => c
                .email
                .is_some_and(|e| e.eq_ignore_ascii_case(&address)),
        });
        let code = new_code()?;
        let code_hash = hash_secret(code.expose())?;
        let id = new_id("reg_")?;
        let new = NewChallenge {
            id: &id,
            asked_no: &asked_no,
            address: &address,
            channel,
            consumer_no: matched.then_some(asked_no.as_str()),
            code_hash: &code_hash,
        };
        match store.portal_challenge_start(&new, &rules(), now)? {
            Sending::Sent(c) => {
                send_code(store, &c, code, now)?;
                tracing::info!(registration = %c.id, channel = c.channel.name(), "portal registration started");
                Ok(registration_view(&c))
            }
            Sending::TooSoon { until } => Err(too_soon(until)),
            Sending::Closed => Err(closed()),
        }
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// A new code for a registration (not within a minute of the last, and within the hourly
/// limit); the one before stops working.
#[utoipa::path(
    post,
    path = "/api/v1/portal/registrations/{id}/resend",
    tag = "portal",
    params(("id" = String, Path, description = "The registration id")),
    responses(
        (status = 202, description = "A new code is sent if the number and the address matched", body = RegistrationView),
        (status = 410, description = "Expired, out of attempts, used or unknown", body = ErrorBody),
        (status = 429, description = "Too soon after the last code", body = ErrorBody),
    )
)]
pub async fn resend(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RegistrationView>), ApiError> {
    let now = state.now();
    let view = blocking(&state, move |store| {
        let code = new_code()?;
        let code_hash = hash_secret(code.expose())?;
        match store.portal_challenge_resend(&id, &code_hash, &rules(), now)? {
            Sending::Sent(c) => {
                send_code(store, &c, code, now)?;
                tracing::info!(registration = %c.id, "portal registration code sent again");
                Ok(registration_view(&c))
            }
            Sending::TooSoon { until } => Err(too_soon(until)),
            Sending::Closed => Err(closed()),
        }
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// The code a consumer received.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeSubmission {
    #[schema(example = "048213")]
    pub code: String,
}

impl std::fmt::Debug for CodeSubmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeSubmission(…)")
    }
}

/// A registration done: the login id and the default password are on their way.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredView {
    /// `sms` or `email`: where the login id and the password were sent.
    pub channel: String,
    pub message: String,
}

/// Checks the code of a registration (use case 15.3–15.4): right, the account is made (or
/// reset) and the login id and a default password are sent where the code went. Every guess
/// counts; after five the registration is closed.
#[utoipa::path(
    post,
    path = "/api/v1/portal/registrations/{id}/verify",
    tag = "portal",
    params(("id" = String, Path, description = "The registration id")),
    request_body = CodeSubmission,
    responses(
        (status = 200, description = "Registered: the login id and a password are sent", body = RegisteredView),
        (status = 410, description = "Expired, out of attempts, used or unknown", body = ErrorBody),
        (status = 422, description = "Not the code", body = ErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<CodeSubmission>,
) -> Result<Json<RegisteredView>, ApiError> {
    let code = body.code.trim().to_string();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::unprocessable(
            "invalid_code",
            "the code is six digits",
        ));
    }
    let now = state.now();
    let view = blocking(&state, move |store| {
        let rules = rules();
        let Guess::Check(c) = store.portal_challenge_guess(&id, &rules, now)? else {
            return Err(closed());
        };
        let wrong = || {
            let left = rules.max_code_attempts.saturating_sub(c.attempts);
            ApiError::unprocessable(
                "wrong_code",
                format!("that is not the code; {left} attempt(s) left"),
            )
        };
        if !verify_secret(&code, &c.code_hash) {
            tracing::info!(registration = %c.id, attempts = c.attempts, "portal registration code refused");
            return Err(wrong());
        }
        let Some(login_id) = c.consumer_no.clone() else {
            // an unmatched request's code is random and unsent; guessing it changes nothing
            return Err(wrong());
        };
        let password = new_password()?;
        let hash = hash_secret(password.expose())?;
        if store.portal_register(&c.id, &login_id, &hash, now)?.is_none() {
            return Err(closed());
        }
        let notice = Notice::PortalCredentials {
            login_id: login_id.clone(),
            password,
        };
        enqueue_on(
            store,
            &login_id,
            c.channel,
            &format!("portal-login/{}", c.id),
            &notice,
            now,
        )
        .map_err(notify_failed)?;
        tracing::info!(registration = %c.id, consumer_no = %login_id, "portal account registered");
        Ok(RegisteredView {
            channel: c.channel.name().into(),
            message: "registered: your login id and a password have been sent to you; you will \
                      choose a new password when you first log in"
                .into(),
        })
    })
    .await?;
    Ok(Json(view))
}

/// A login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "C-100000001")]
    pub login_id: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("login_id", &self.login_id)
            .finish_non_exhaustive()
    }
}

/// A session: give `token` as `Authorization: Bearer <token>` to the portal's routes.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub token: String,
    pub expires_at: String,
    /// The password is the default one: change it (`POST /api/v1/portal/password`) before
    /// anything else.
    pub password_change_required: bool,
}

impl std::fmt::Debug for SessionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionView")
            .field("expires_at", &self.expires_at)
            .field("password_change_required", &self.password_change_required)
            .finish_non_exhaustive()
    }
}

fn login_refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "login_failed",
        "the login id and password do not match, or too many failed logins have locked the \
         account for a while",
    )
}

/// Logs a consumer in (use case 15.5–15.6). A wrong login id, a wrong password and a locked
/// account are answered alike; five failures in a row lock the account for 15 minutes.
#[utoipa::path(
    post,
    path = "/api/v1/portal/login",
    tag = "portal",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = SessionView),
        (status = 401, description = "Refused (wrong id or password, or locked)", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> Result<Json<SessionView>, ApiError> {
    let login_id = req.login_id.trim().to_string();
    if login_id.is_empty() || login_id.len() > 64 || req.password.chars().count() > PASSWORD_MAX {
        return Err(login_refused());
    }
    let now = state.now();
    let password = Secret::new(req.password);
    let view = blocking(&state, move |store| {
        let rules = rules();
        let account = match store.portal_login_gate(&login_id, &rules, now)? {
            LoginGate::Check(account) => account,
            LoginGate::Unknown | LoginGate::Locked { .. } => {
                verify_secret(password.expose(), decoy_hash());
                tracing::info!(login_id = %login_id, "portal login refused");
                return Err(login_refused());
            }
        };
        if !verify_secret(password.expose(), &account.password_hash) {
            tracing::info!(login_id = %login_id, "portal login refused");
            return Err(login_refused());
        }
        let mut secret = [0u8; 32];
        random(&mut secret)?;
        let secret = format!("{SESSION_PREFIX}{}", hex::encode(secret));
        let id = new_id("ses_")?;
        let expires_at = now + rules.session_ttl;
        store.portal_login_succeeded(&NewSession {
            id: &id,
            token_hash: token_hash(&secret),
            consumer_no: &account.consumer_no,
            created_at: now,
            expires_at,
        })?;
        tracing::info!(session = %id, consumer_no = %account.consumer_no, "portal login");
        Ok(SessionView {
            token: secret,
            expires_at: ist(expires_at),
            password_change_required: account.must_change,
        })
    })
    .await?;
    Ok(Json(view))
}

/// A logged-in consumer: a valid portal session. Until the default password is changed it
/// opens only [`BEFORE_CHANGE`] (403 `password_change_required` elsewhere).
#[derive(Debug, Clone)]
pub struct ConsumerSession {
    pub session_id: String,
    pub consumer_no: String,
    pub login_id: String,
    pub must_change: bool,
}

impl FromRequestParts<AppState> for ConsumerSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let refused = || ApiError::unauthorized("a valid consumer portal session is required");
        let secret = bearer(parts)?;
        if !secret.starts_with(SESSION_PREFIX) {
            return Err(refused());
        }
        let hash = token_hash(secret);
        let found = state.db(move |s| s.portal_session_by_hash(&hash)).await?;
        let session = found
            .filter(|s| s.is_valid_at(state.now()))
            .ok_or_else(refused)?;
        if session.must_change && !BEFORE_CHANGE.contains(&parts.uri.path()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "password_change_required",
                "change the default password first (POST /api/v1/portal/password)",
            ));
        }
        Ok(ConsumerSession {
            session_id: session.id,
            consumer_no: session.consumer_no,
            login_id: session.login_id,
            must_change: session.must_change,
        })
    }
}

/// The logged-in consumer.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    pub consumer_no: String,
    /// The consumer's name, as the MDM has it (null if it has none).
    pub name: Option<String>,
    pub login_id: String,
    pub password_change_required: bool,
}

/// Who is logged in, and whether the password must be changed first.
#[utoipa::path(
    get,
    path = "/api/v1/portal/me",
    tag = "portal",
    responses(
        (status = 200, description = "The consumer", body = MeView),
        (status = 401, description = "No valid portal session", body = ErrorBody),
    ),
    security(("consumer" = []))
)]
pub async fn me(
    session: ConsumerSession,
    State(state): State<AppState>,
) -> Result<Json<MeView>, ApiError> {
    let no = session.consumer_no.clone();
    let consumer = state.db(move |s| s.mdm_consumer(&no)).await?;
    Ok(Json(MeView {
        consumer_no: session.consumer_no,
        name: consumer.map(|c| c.name),
        login_id: session.login_id,
        password_change_required: session.must_change,
    }))
}

/// A password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 10 characters, not the current password, not the login id.
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange(…)")
    }
}

/// What is wrong with `new` as the password of `login_id` (whose current one is `current`).
fn password_problem(new: &str, current: &str, login_id: &str) -> Option<&'static str> {
    let n = new.chars().count();
    if n < PASSWORD_MIN {
        Some("the new password must be at least 10 characters")
    } else if n > PASSWORD_MAX {
        Some("the new password must be at most 128 characters")
    } else if new == current {
        Some("the new password must differ from the current one")
    } else if new.trim().eq_ignore_ascii_case(login_id) {
        Some("the new password must not be the login id")
    } else {
        None
    }
}

/// Changes the password (use case 15.7): the current one (the default one after a
/// registration) and a new one. Every other session of the consumer ends.
#[utoipa::path(
    post,
    path = "/api/v1/portal/password",
    tag = "portal",
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed", body = MeView),
        (status = 401, description = "No valid portal session", body = ErrorBody),
        (status = 403, description = "The current password is wrong", body = ErrorBody),
        (status = 422, description = "The new password breaks a rule", body = ErrorBody),
    ),
    security(("consumer" = []))
)]
pub async fn change_password(
    session: ConsumerSession,
    State(state): State<AppState>,
    Json(body): Json<PasswordChange>,
) -> Result<Json<MeView>, ApiError> {
    let now = state.now();
    let (current, new) = (
        Secret::new(body.current_password),
        Secret::new(body.new_password),
    );
    let who = session.clone();
    let name = blocking(&state, move |store| {
        let account = store
            .portal_account(&who.consumer_no)?
            .ok_or_else(|| ApiError::unauthorized("a valid consumer portal session is required"))?;
        if current.expose().chars().count() > PASSWORD_MAX
            || !verify_secret(current.expose(), &account.password_hash)
        {
            return Err(ApiError::forbidden("the current password is wrong"));
        }
        if let Some(why) = password_problem(new.expose(), current.expose(), &account.login_id) {
            return Err(ApiError::unprocessable("weak_password", why));
        }
        let hash = hash_secret(new.expose())?;
        store.portal_set_password(&who.consumer_no, &hash, &who.session_id, now)?;
        tracing::info!(consumer_no = %who.consumer_no, "portal password changed");
        Ok(store.mdm_consumer(&who.consumer_no)?.map(|c| c.name))
    })
    .await?;
    Ok(Json(MeView {
        consumer_no: session.consumer_no,
        name,
        login_id: session.login_id,
        password_change_required: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_passwords_are_well_formed_and_differ() {
        let codes: Vec<String> = (0..50)
            .map(|_| new_code().unwrap().expose().to_string())
            .collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(
            codes
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 45
        );
        let p = new_password().unwrap();
        let p = p.expose();
        assert_eq!(p.len(), 14, "{p}");
        assert_eq!((&p[4..5], &p[9..10]), ("-", "-"));
        assert!(
            p.bytes()
                .all(|b| b == b'-' || PASSWORD_ALPHABET.contains(&b))
        );
        assert_ne!(p, new_password().unwrap().expose());
    }

    #[test]
    fn secrets_are_hashed_with_argon2id_and_verified() {
        let h = hash_secret("048213").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("048213"));
        assert!(verify_secret("048213", &h));
        assert!(!verify_secret("048214", &h));
        assert!(!verify_secret("048213", "not a hash"));
        assert_ne!(h, hash_secret("048213").unwrap(), "salted");
    }

    #[test]
    fn password_rules() {
        fn check(new: &str) -> Option<&'static str> {
            password_problem(new, "k7Rm-Qx2p-Wd9z", "C-100000001")
        }
        assert!(check("short").is_some());
        assert!(check("k7Rm-Qx2p-Wd9z").is_some());
        assert!(check("c-100000001").is_some());
        assert!(check(&"x".repeat(129)).is_some());
        assert_eq!(check("a long new passphrase"), None);
    }
}
