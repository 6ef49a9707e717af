//! Commands to meters through the head-end's executor: submit one (idempotent by your id) or
//! one per meter of a group, and follow them (state, outcome, audit trail).
//!
//! Without an executor in this process (no head-end runs here) every command route answers
//! 503 `commands_unavailable`.
//!
//! A firmware upgrade names its image by plain file name; the file must be in the server's
//! firmware directory (`<data dir>/firmware/`). Paths, separators and `..` are refused, and so
//! is a name that leads out of the directory through a link: the API never reads an arbitrary
//! server file.

use std::collections::HashSet;
use std::path::{Path as FsPath, PathBuf};

use axum::extract::State;
use axum::http::StatusCode;
use hes::commands::{CommandError, CommandStatus};
use model::{CommandId, CommandKind, CommandRequest};
use serde::{Deserialize, Serialize};
use store::{AuditRow, Role};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::meters::PageQuery;
use crate::paging;
use crate::time::ist;
use crate::{AppState, serial};

/// The longest command or group id.
const MAX_ID: usize = 128;
/// The most meters in one group command.
pub const MAX_GROUP: usize = 1000;

/// A command to one meter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSubmission {
    /// Your id for the command, 1 to 128 printable ASCII characters without spaces. The same id
    /// again returns the command already made; it does not run twice.
    #[schema(example = "prepaid-2026-12-01-000123")]
    pub id: String,
    #[schema(example = "UP0000001")]
    pub meter: String,
    /// What to do, tagged by `kind`: `disconnect`, `reconnect`, `ping`, `clock_sync`,
    /// `read_instantaneous`, `read_block_load`/`read_daily`/`read_billing` (`from`, `to`),
    /// `read_events` (`log`, `from`, `to`), `set_load_limit` (`watts`), `set_capture_period`
    /// (`seconds`: 900 or 1800), `set_billing_date` (`day`: 1–28), `set_payment_mode` (`mode`:
    /// `prepaid`/`postpaid`), `set_balance` (`paise`), `md_reset`, `set_tou_calendar` (`name`, `switches`,
    /// `activate_at`), `firmware_upgrade` (`image_path`: a file name in the server's firmware
    /// directory, `identifier`, `expected_version`), `rotate_keys`.
    #[schema(value_type = Object, example = json!({"kind": "disconnect"}))]
    pub command: serde_json::Value,
}

/// The same command to many meters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupSubmission {
    /// Your id for the group (as a command id, and without `/`); each meter's command gets the
    /// id `<batch>/<serial>`.
    #[schema(example = "reconnect-feeder-12")]
    pub batch: String,
    /// 1 to 1000 distinct serials, all in the registry.
    pub meters: Vec<String>,
    /// As in a single command.
    #[schema(value_type = Object, example = json!({"kind": "reconnect"}))]
    pub command: serde_json::Value,
}

/// The confirmed result of a finished command.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Outcome {
    /// `succeeded`, `failed` or `timed_out`.
    pub state: String,
    /// What happened, for people.
    pub detail: String,
    /// The switch state read back after a relay command: `connected`, `disconnected`,
    /// `ready_for_reconnection`.
    pub relay: Option<String>,
    /// A value read back to confirm (firmware version, calendar name, payment mode…).
    pub read_back: Option<String>,
    pub attempts: u32,
    pub finished_at: String,
}

/// One step in a command's life.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    pub at: String,
    pub state: String,
    pub detail: String,
}

/// A command and where it is.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Command {
    pub id: String,
    pub meter: String,
    /// The command's kind, e.g. `disconnect`.
    pub kind: String,
    /// The group it belongs to.
    pub batch: Option<String>,
    /// `queued`, `running`, `succeeded`, `failed` or `timed_out`.
    pub state: String,
    /// Sessions tried so far.
    pub attempts: u32,
    /// Once final.
    pub outcome: Option<Outcome>,
    pub requested_by: String,
    pub created_at: String,
    pub updated_at: String,
    /// Every state it went through (on `GET /commands/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Vec<AuditEntry>>,
}

fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

impl Command {
    fn from_status(s: CommandStatus, audit: Option<Vec<AuditRow>>) -> Self {
        Command {
            id: s.id.0,
            meter: s.meter.to_string(),
            kind: s.kind,
            batch: s.batch,
            state: s.state.name().to_string(),
            attempts: s.attempts,
            outcome: s.outcome.map(|o| Outcome {
                state: o.state.name().to_string(),
                detail: o.detail,
                relay: o.relay.as_ref().map(name),
                read_back: o.read_back,
                attempts: o.attempts,
                finished_at: ist(o.finished_at),
            }),
            requested_by: s.requested_by,
            created_at: ist(s.created_at),
            updated_at: ist(s.updated_at),
            audit: audit.map(|rows| {
                rows.into_iter()
                    .map(|a| AuditEntry {
                        at: ist(a.at),
                        state: a.state,
                        detail: a.detail,
                    })
                    .collect()
            }),
        }
    }
}

/// The answer to a submission.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Submitted {
    /// `true`: a new command, now queued (202); `false`: the id was known, this is that
    /// command and nothing new runs (200).
    pub created: bool,
    pub command: Command,
}

/// The answer to a group submission: one result per meter, in the order given.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupSubmitted {
    pub batch: String,
    pub items: Vec<Submitted>,
}

/// A group command at a glance, and a page of its commands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupStatus {
    pub batch: String,
    pub queued: usize,
    pub running: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub timed_out: usize,
    /// The group's commands, in submission order.
    pub items: Vec<Command>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

pub(crate) fn command_error(e: CommandError) -> ApiError {
    match e {
        CommandError::UnknownMeter(m) => {
            ApiError::not_found(format!("no meter {m} in the head-end's registry"))
        }
        CommandError::UnknownCommand(id) => ApiError::not_found(format!("no command {id}")),
        CommandError::IdReused(id) => ApiError::conflict(
            "command_id_reused",
            format!("command id {id} is already used by a different command"),
        ),
        CommandError::InvalidRequest(why) => ApiError::unprocessable("invalid_command", why),
        CommandError::Stopped(why) => {
            tracing::warn!(%why, "command executor stopped");
            ApiError::unavailable("commands_unavailable", "the head-end is stopping")
        }
        e @ (CommandError::Store(_) | CommandError::Corrupt { .. }) => {
            ApiError::internal("command executor", &e)
        }
    }
}

fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::unprocessable(
            "invalid_command",
            format!("a {what} is 1 to {MAX_ID} printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

/// The image named `name`, which must be a plain file name of a file inside `dir` (links that
/// lead outside it are refused too).
pub fn firmware_image(dir: &FsPath, name: &str) -> Result<PathBuf, ApiError> {
    let bad = |why: &str| {
        ApiError::unprocessable(
            "invalid_firmware_image",
            format!("firmware image {name:?}: {why}"),
        )
    };
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.contains(['/', '\\', ':'])
        && !name.contains("..")
        && !name.starts_with('.')
        && !name.chars().any(char::is_control);
    if !plain {
        return Err(bad(
            "give the plain file name (no directory, no `..`) of an image in the server's \
             firmware directory",
        ));
    }
    let missing = || bad("there is no such image in the server's firmware directory");
    let dir = std::fs::canonicalize(dir).map_err(|_| missing())?;
    let path = std::fs::canonicalize(dir.join(name)).map_err(|_| missing())?;
    if !path.starts_with(&dir) || !path.is_file() {
        return Err(missing());
    }
    Ok(path)
}

/// The command kind of a submission, checked (the firmware rule applied).
async fn command_kind(state: &AppState, v: serde_json::Value) -> Result<CommandKind, ApiError> {
    let mut kind: CommandKind = serde_json::from_value(v)
        .map_err(|e| ApiError::unprocessable("invalid_command", format!("command: {e}")))?;
    if let CommandKind::FirmwareUpgrade { image_path, .. } = &mut kind {
        let dir = state.firmware_dir().to_path_buf();
        let name = image_path.clone();
        let resolved = tokio::task::spawn_blocking(move || firmware_image(&dir, &name))
            .await
            .map_err(|e| ApiError::internal("firmware image lookup", &e))??;
        *image_path = resolved.to_string_lossy().into_owned();
    }
    Ok(kind)
}

fn submitted(s: hes::commands::Submitted) -> Submitted {
    Submitted {
        created: s.created,
        command: Command::from_status(s.status, None),
    }
}

/// Sends a command to a meter (operator).
#[utoipa::path(
    post,
    path = "/api/v1/commands",
    tag = "commands",
    request_body = CommandSubmission,
    responses(
        (status = 202, description = "A new command, queued", body = Submitted),
        (status = 200, description = "The id was known: that command, unchanged", body = Submitted),
        (status = 400, description = "Bad serial", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "The meter is not in the registry", body = ErrorBody),
        (status = 409, description = "The id is used by a different command", body = ErrorBody),
        (status = 422, description = "Invalid command, id or firmware image", body = ErrorBody),
        (status = 503, description = "No head-end runs in this server", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn submit(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<CommandSubmission>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    caller.require(Role::Operator)?;
    let commands = state.commands()?;
    check_id("command id", &body.id)?;
    let meter = serial(&body.meter)?;
    let kind = command_kind(&state, body.command).await?;
    let request = CommandRequest {
        id: CommandId(body.id),
        meter,
        kind,
        requested_by: caller.who(),
        batch: None,
    };
    let s = commands.submit(request).await.map_err(command_error)?;
    let status = if s.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(submitted(s))))
}

/// A command's state, outcome and audit trail. (A group's commands have ids
/// `<batch>/<serial>`: write the `/` as `%2F`.)
#[utoipa::path(
    get,
    path = "/api/v1/commands/{id}",
    tag = "commands",
    params(("id" = String, Path, description = "The command id")),
    responses(
        (status = 200, description = "The command with its audit trail", body = Command),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such command", body = ErrorBody),
        (status = 503, description = "No head-end runs in this server", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn status(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Command>, ApiError> {
    caller.require(Role::Reader)?;
    let commands = state.commands()?;
    let id = CommandId(id);
    let status = commands
        .status(&id)
        .await
        .map_err(command_error)?
        .ok_or_else(|| ApiError::not_found(format!("no command {id}")))?;
    let audit = commands.audit(&id).await.map_err(command_error)?;
    Ok(Json(Command::from_status(status, Some(audit))))
}

/// Sends one command per meter of a group (operator). Every meter is checked first: one unknown
/// meter refuses the whole group (404).
#[utoipa::path(
    post,
    path = "/api/v1/command-groups",
    tag = "commands",
    request_body = GroupSubmission,
    responses(
        (status = 202, description = "One result per meter; at least one new command", body = GroupSubmitted),
        (status = 200, description = "Every command of the group was known already", body = GroupSubmitted),
        (status = 400, description = "Bad serial", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "A meter is not in the registry", body = ErrorBody),
        (status = 409, description = "An id is used by a different command", body = ErrorBody),
        (status = 422, description = "Invalid command, group id or meter list", body = ErrorBody),
        (status = 503, description = "No head-end runs in this server", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn submit_group(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<GroupSubmission>,
) -> Result<(StatusCode, Json<GroupSubmitted>), ApiError> {
    caller.require(Role::Operator)?;
    let commands = state.commands()?;
    check_id("group id", &body.batch)?;
    if body.batch.contains('/') {
        return Err(ApiError::unprocessable(
            "invalid_command",
            "a group id has no `/`",
        ));
    }
    if body.meters.is_empty() || body.meters.len() > MAX_GROUP {
        return Err(ApiError::unprocessable(
            "invalid_command",
            format!("a group command names 1 to {MAX_GROUP} meters"),
        ));
    }
    let meters = body
        .meters
        .iter()
        .map(|m| serial(m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    if let Some(twice) = meters.iter().find(|m| !seen.insert(*m)) {
        return Err(ApiError::unprocessable(
            "invalid_command",
            format!("meter {twice} is named twice"),
        ));
    }
    let kind = command_kind(&state, body.command).await?;
    let results = commands
        .submit_group(&body.batch, &meters, kind, &caller.who())
        .await
        .map_err(command_error)?;
    let any_new = results.iter().any(|s| s.created);
    let status = if any_new {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(GroupSubmitted {
            batch: body.batch,
            items: results.into_iter().map(submitted).collect(),
        }),
    ))
}

const GROUP_CURSOR: &str = "group";

/// A group command: counts by state and a page of its commands.
#[utoipa::path(
    get,
    path = "/api/v1/command-groups/{batch}",
    tag = "commands",
    params(("batch" = String, Path, description = "The group id"), PageQuery),
    responses(
        (status = 200, description = "The group", body = GroupStatus),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 503, description = "No head-end runs in this server", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn group_status(
    caller: Caller,
    State(state): State<AppState>,
    Path(batch): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<GroupStatus>, ApiError> {
    caller.require(Role::Reader)?;
    let commands = state.commands()?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<usize>(GROUP_CURSOR, q.cursor.as_deref())?;
    let group = commands.batch_status(&batch).await.map_err(command_error)?;
    if group.commands.is_empty() {
        return Err(ApiError::not_found(format!("no group command {batch}")));
    }
    // The group's commands in submission order, keyed by position (a group does not grow).
    let indexed: Vec<(usize, CommandStatus)> = group.commands.into_iter().enumerate().collect();
    let (items, next) = paging::page_after(indexed, |(i, _)| *i, after.as_ref(), limit);
    Ok(Json(GroupStatus {
        batch: group.batch,
        queued: group.queued,
        running: group.running,
        succeeded: group.succeeded,
        failed: group.failed,
        timed_out: group.timed_out,
        items: items
            .into_iter()
            .map(|(_, s)| Command::from_status(s, None))
            .collect(),
        next_cursor: next.map(|k| paging::encode(GROUP_CURSOR, &k)),
    }))
}
