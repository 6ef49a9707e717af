//! Prepaid wallets: a consumer's balance and the ledger behind it (recharges, daily charges,
//! adjustments), amounts in paise with the rupee text beside them.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::Role;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::ist;

/// A wallet's balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletView {
    pub consumer_no: String,
    /// Paise; negative for a debt.
    pub balance_paise: i64,
    #[schema(example = "₹1,234.50")]
    pub balance: String,
    /// Whether the balance equals the sum of the ledger.
    pub ledger_checks: bool,
}

/// One ledger entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntry {
    pub n: u64,
    /// What caused it (`recharge/<payment id>`, `daily/<date>`, …).
    pub cause: String,
    /// `opening_balance`, `recharge`, `daily_charge`, `adjustment` or `refund`.
    pub kind: String,
    /// Paise: credit positive, debit negative.
    pub amount_paise: i64,
    pub amount: String,
    pub balance_after_paise: i64,
    /// The itemised charge, the payment, …
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    pub items: Vec<LedgerEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn no_wallet(no: &str) -> ApiError {
    ApiError::not_found(format!("no prepaid wallet for consumer {no}"))
}

/// A prepaid consumer's balance.
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/wallet",
    tag = "consumers",
    params(("consumer_no" = String, Path, description = "Consumer number")),
    responses(
        (status = 200, description = "The balance", body = WalletView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No wallet", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn wallet(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
) -> Result<Json<WalletView>, ApiError> {
    caller.require(Role::Reader)?;
    let key = no.clone();
    let (balance, checks) = state
        .db(move |s| Ok((s.wallet_balance(&key)?, s.wallet_check(&key)?)))
        .await?;
    let balance = balance.ok_or_else(|| no_wallet(&no))?;
    Ok(Json(WalletView {
        consumer_no: no,
        balance_paise: balance.0,
        balance: balance.to_string(),
        ledger_checks: checks,
    }))
}

const LEDGER_CURSOR: &str = "ledger";

/// A prepaid consumer's ledger, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/ledger",
    tag = "consumers",
    params(("consumer_no" = String, Path, description = "Consumer number"), LedgerQuery),
    responses(
        (status = 200, description = "Entries, oldest first", body = LedgerPage),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No wallet", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ledger(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<LedgerPage>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<u64>(LEDGER_CURSOR, q.cursor.as_deref())?.unwrap_or(0);
    let key = no.clone();
    let (balance, rows) = state
        .db(move |s| {
            Ok((
                s.wallet_balance(&key)?,
                s.wallet_entries(&key, after, limit + 1)?,
            ))
        })
        .await?;
    if balance.is_none() {
        return Err(no_wallet(&no));
    }
    let (rows, next) = paging::split(rows, limit, LEDGER_CURSOR, |e| e.n);
    Ok(Json(LedgerPage {
        items: rows
            .into_iter()
            .map(|e| LedgerEntry {
                n: e.n,
                cause: e.cause,
                kind: e.kind,
                amount_paise: e.amount.0,
                amount: e.amount.to_string(),
                balance_after_paise: e.balance_after.0,
                detail: serde_json::from_str(&e.detail)
                    .unwrap_or(serde_json::Value::String(e.detail)),
                at: ist(e.at),
            })
            .collect(),
        next_cursor: next,
    }))
}
