//! `GET /metrics`: the head-end's counters in the Prometheus text format (sessions, failures and
//! latencies per job kind), for a scraper holding a reader token. Empty without a head-end in
//! the process.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use store::Role;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

pub async fn prometheus(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Reader)?;
    let text = state
        .commands
        .as_ref()
        .map(|c| c.head_end().metrics().render_prometheus())
        .unwrap_or_default();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
