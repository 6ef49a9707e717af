//! The OpenAPI 3 document, generated from the handlers' and types' annotations and served
//! (without authentication) at `GET /api/openapi.json`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    bills, care, commands, consumers, error, exceptions, field, meters, notifications, outages,
    payments, portal, prepaid, readings, tamper, tokens, wallets,
};

/// The API's description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Urja API",
        description = "Urja's meter data management and head-end API. Every /api/v1 route needs \
            `Authorization: Bearer <token>` (roles: admin ⊇ operator ⊇ reader), except the \
            payment gateway's signed webhook and the consumer portal (/api/v1/portal: \
            registration and login without a token, the rest with a consumer's session, \
            the `consumer` scheme, which no other route accepts). Times are ISO \
            8601 with an offset (answers in IST, +05:30). Errors are {\"code\", \"message\"}. \
            Lists page with `limit` (≤ 1000) and `cursor`, answering {\"items\", \"next_cursor\"}."
    ),
    paths(
        meters::list,
        meters::one,
        readings::intervals,
        readings::interval,
        readings::edit_interval,
        readings::interval_history,
        readings::daily,
        readings::billing,
        readings::instantaneous,
        readings::events,
        readings::alarms,
        consumers::daily,
        consumers::determinants,
        consumers::completeness,
        consumers::meters_below,
        consumers::notices,
        wallets::wallet,
        wallets::ledger,
        bills::of_consumer,
        bills::pdf,
        bills::run_cycle,
        bills::put_account,
        tamper::list,
        tamper::confirm,
        notifications::contact,
        notifications::put_contact,
        notifications::list,
        notifications::one,
        portal::start,
        portal::verify,
        portal::resend,
        portal::login,
        portal::me,
        portal::change_password,
        prepaid::webhook,
        payments::import,
        field::work_orders,
        field::work_order,
        field::raise,
        field::assign,
        field::complete,
        field::resolve,
        field::cancel,
        field::request_connection,
        field::connections,
        field::connection,
        field::consumer,
        field::history,
        payments::receipt,
        payments::receipts,
        payments::statement,
        prepaid::payments,
        prepaid::emergency_credit,
        prepaid::tariffs,
        prepaid::put_tariff,
        prepaid::cases,
        prepaid::case,
        prepaid::start_migration,
        prepaid::migrations,
        prepaid::migration,
        care::types,
        care::ageing,
        care::register_request,
        care::list_requests,
        care::request,
        care::update_request,
        care::complete_request,
        care::register_complaint,
        care::list_complaints,
        care::complaint,
        care::update_complaint,
        care::complete_complaint,
        exceptions::list,
        exceptions::close,
        commands::submit,
        commands::status,
        commands::submit_group,
        commands::group_status,
        outages::list,
        outages::one,
        outages::ping_outage,
        outages::ping_request,
        outages::ping_report,
        tokens::list,
        tokens::create,
        tokens::revoke,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "meters", description = "The head-end's meter registry"),
        (name = "readings", description = "The MDM's readings, events and alarms of a meter"),
        (name = "consumers", description = "What the MDM hands on (daily consumption, billing determinants), data completeness and the network"),
        (name = "exceptions", description = "The VEE exception queue"),
        (name = "prepaid", description = "The prepaid engine: payments, emergency credit, tariffs, disconnection cases, payment-mode migrations"),
        (name = "billing", description = "Postpaid bills, a bill as PDF, billing cycles and confirmed tamper periods"),
        (name = "care", description = "Customer care: service requests and complaints, their completion by the target system, kinds with SLA, ageing"),
        (name = "commands", description = "Commands to meters through the head-end"),
        (name = "outages", description = "Outages grouped by DT and feeder, and the OMS ping of meters"),
        (name = "tokens", description = "API tokens (admin)"),
        (name = "portal", description = "The consumer portal: registration by a one-time code, login, the password"),
    )
)]
pub struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // A consumer's portal session (`urja_cs_…`), from POST /api/v1/portal/login.
        components.add_security_scheme(
            "consumer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as JSON, made once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()))
}

/// `GET /api/openapi.json`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json())
}
