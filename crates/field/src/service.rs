//! The built-in field-work manager (WFM) and new connections, over the store and the
//! head-end's commands.
//!
//! - Tamper (5.3–5.8): the MDM's `wfm` site-inspection notices become inspection orders; a
//!   confirmed tamper records the tamper period for billing (5.6), disconnects the supply
//!   through the head-end (5.4–5.5) and tells CIS/CRM and billing; resolving it reconnects the
//!   supply (5.7–5.8).
//! - New connection (12): a verified request records the consumer, the service point and the
//!   contact and raises the installation order; the field report installs the meter below its
//!   transformer; the head-end is asked for instantaneous, interval and event data; once the
//!   reads succeed and the meter's register is at or past the initial reading, billing and
//!   CIS/CRM are told, with the initial reading, and the consumer is put in billing or moved
//!   to prepaid.
//! - Meter replacement and manual reconnection reports update the record and tell CIS/CRM.
//!
//! Every command id and routed-notice key is derived from the order or request, so a step
//! done again after a crash sends nothing twice.

use chrono::{DateTime, Duration, Utc};
use hes::commands::{CommandError, Commands};
use model::command::{CommandId, CommandState};
use model::{CommandKind, EventCategory, MeterSerial};
use serde::{Deserialize, Serialize};
use store::billing::BillingAccount;
use store::field::{ConnectionRequest, NewWorkOrder, WorkOrder};
use store::mdm::{Child, Consumer, NodeKind, RoutedMessage, ServicePoint};
use store::tamper::{NewTamperPeriod, TamperSource};
use store::{Store, StoreError};

use crate::orders::{Finding, Kind, Report, ReportError, logged};

const BY: &str = "wfm";
/// How many times a new connection's verification reads are sent before it fails.
const READ_TRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("the report cannot be taken: {0}")]
    Report(#[from] ReportError),
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the order's state (completed already, wrong kind, …).
    #[error("{0}")]
    Refused(String),
}

/// A verified request for a new connection (use case 12.1), from CIS/CRM or billing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConnection {
    pub consumer_no: String,
    pub name: String,
    pub address: String,
    pub category: String,
    pub sanctioned_load_w: i64,
    /// `prepaid` or `postpaid`.
    pub scheme: String,
    /// The distribution transformer that will supply it.
    pub transformer: String,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Postpaid: the billing cycle day (1 by default).
    #[serde(default)]
    pub cycle_day: Option<u8>,
    /// Who verified the application (documents, site): `cis`, `crm` or `billing` and a name.
    pub verified_by: String,
}

/// The built-in WFM and the new-connection process.
#[derive(Clone)]
pub struct Field {
    store: Store,
    commands: Option<Commands>,
    prepaid: Option<prepaid::service::Prepaid>,
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field").finish_non_exhaustive()
    }
}

impl Field {
    /// Without commands nothing is sent to meters; without the prepaid engine a new prepaid
    /// connection is enrolled without its meter's mode written.
    pub fn new(
        store: Store,
        commands: Option<Commands>,
        prepaid: Option<prepaid::service::Prepaid>,
    ) -> Self {
        Field {
            store,
            commands,
            prepaid,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    // --- tamper (5.3–5.8)

    /// Raises an inspection order for every `wfm` site-inspection notice not read yet
    /// (5.3: the consumer, the meter, the tamper code, the address). How many were raised.
    pub fn take_notices(&self, now: DateTime<Utc>) -> Result<usize, FieldError> {
        let mut raised = 0;
        loop {
            let after = self.store.notice_cursor(BY)?;
            let rows = self.store.mdm_notices(Some("wfm"), after, 200)?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                return Ok(raised);
            };
            for row in rows {
                let notice: serde_json::Value =
                    serde_json::from_str(&row.message.payload).unwrap_or_default();
                if notice["notice"] != "site_inspection" {
                    continue;
                }
                let at = notice["at"]
                    .as_str()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    .unwrap_or(row.created_at);
                let (consumer, address) = self
                    .store
                    .consumer_of_meter(&row.message.meter, at)?
                    .map_or((None, String::new()), |(c, a)| (Some(c), a));
                let detail = serde_json::json!({
                    "tamper_code": notice["code"],
                    "description": notice["description"],
                    "reported_at": at.to_rfc3339(),
                    "notice": row.message.key,
                })
                .to_string();
                let (_, new) = self.store.work_order_raise(
                    &NewWorkOrder {
                        kind: Kind::TamperInspection.name(),
                        source_key: Some(&row.message.key),
                        consumer_no: consumer.as_deref(),
                        meter: Some(&row.message.meter),
                        address: &address,
                        detail: &detail,
                        due_at: now + Kind::TamperInspection.allowed(),
                        created_by: BY,
                    },
                    now,
                )?;
                raised += usize::from(new);
            }
            self.store.notice_cursor_set(BY, last)?;
        }
    }

    fn order(&self, id: u64) -> Result<WorkOrder, FieldError> {
        self.store
            .work_order(id)?
            .ok_or_else(|| FieldError::NotFound(format!("no work order {id}")))
    }

    fn save(&self, w: &WorkOrder, read_at: DateTime<Utc>) -> Result<(), FieldError> {
        if self.store.work_order_save(w, read_at)? {
            Ok(())
        } else {
            Err(FieldError::Refused(
                "the work order changed meanwhile: read it again".into(),
            ))
        }
    }

    /// Moves an open or assigned order to `to`, logged with `note`, after `edit`.
    fn move_on(
        &self,
        id: u64,
        to: &str,
        by: &str,
        note: &str,
        now: DateTime<Utc>,
        edit: impl FnOnce(&mut WorkOrder) -> Result<(), FieldError>,
    ) -> Result<WorkOrder, FieldError> {
        let mut w = self.order(id)?;
        if !matches!(w.state.as_str(), "open" | "assigned") {
            return Err(FieldError::Refused(format!(
                "work order {id} is {}: only open or assigned orders are {to}",
                w.state
            )));
        }
        edit(&mut w)?;
        let read_at = w.updated_at;
        w.state = to.into();
        w.log = logged(&w.log, to, by, now, note);
        w.updated_at = now;
        self.save(&w, read_at)?;
        Ok(w)
    }

    /// Gives an open or assigned order to `crew`.
    pub fn assign(
        &self,
        id: u64,
        crew: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<WorkOrder, FieldError> {
        if crew.trim().is_empty() {
            return Err(FieldError::Refused("no crew named".into()));
        }
        self.move_on(id, "assigned", by, crew, now, |w| {
            w.assigned_to = Some(crew.to_string());
            Ok(())
        })
    }

    /// Cancels an order not completed yet.
    pub fn cancel(
        &self,
        id: u64,
        by: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<WorkOrder, FieldError> {
        self.move_on(id, "cancelled", by, note, now, |w| {
            if w.kind == Kind::Installation.name() {
                return Err(FieldError::Refused(
                    "an installation order goes with its connection request".into(),
                ));
            }
            Ok(())
        })
    }

    /// Takes a crew's completion report and does what follows from it.
    pub async fn complete(
        &self,
        id: u64,
        report: Report,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<WorkOrder, FieldError> {
        let mut w = self.order(id)?;
        if !matches!(w.state.as_str(), "open" | "assigned") {
            return Err(FieldError::Refused(format!(
                "work order {id} is {} already",
                w.state
            )));
        }
        let kind = Kind::parse(&w.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("work order kind {}", w.kind)))?;
        report.check(kind, w.created_at, now)?;
        let note = match &report {
            Report::Installation { note, .. }
            | Report::TamperInspection { note, .. }
            | Report::MeterReplacement { note, .. }
            | Report::ManualReconnect { note } => note.clone(),
        };
        match &report {
            Report::Installation {
                meter,
                transformer,
                initial_reading_wh,
                ..
            } => {
                self.installed(&w, meter, transformer, *initial_reading_wh, now)
                    .await?
            }
            Report::TamperInspection {
                finding: Finding::Confirmed,
                reason,
                since,
                ..
            } => self.tamper_confirmed(&w, reason, *since, by, now).await?,
            Report::TamperInspection {
                finding: Finding::NotFound,
                ..
            } => {}
            Report::MeterReplacement {
                new_meter,
                old_final_wh,
                new_initial_wh,
                ..
            } => {
                self.replaced(&w, new_meter, *old_final_wh, *new_initial_wh, now)?;
                self.migrate_after_replacement(&mut w, by, now).await?;
            }
            Report::ManualReconnect { .. } => self.tell(
                &w,
                "reconnected",
                &["cis"],
                serde_json::json!({"connected": true}),
                now,
            )?,
        }
        let read_at = w.updated_at;
        w.state = "completed".into();
        w.report =
            Some(serde_json::to_string(&report).map_err(|e| {
                StoreError::Corrupt(format!("a report that does not serialise: {e}"))
            })?);
        w.log = logged(&w.log, "completed", by, now, &note);
        w.updated_at = now;
        self.save(&w, read_at)?;
        Ok(w)
    }

    /// A routed notice about order `w` to each of `destinations`, once per order and `what`.
    fn tell(
        &self,
        w: &WorkOrder,
        what: &str,
        destinations: &[&str],
        extra: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        let Some(meter) = &w.meter else {
            return Ok(());
        };
        let mut payload = serde_json::json!({
            "kind": what,
            "work_order": store::field::work_order_number(w.id, w.created_at),
            "consumer_no": w.consumer_no,
            "meter": meter.as_str(),
            "at": now.to_rfc3339(),
        });
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        for d in destinations {
            self.store.mdm_route(
                &RoutedMessage {
                    key: format!("work-order/{}/{what}/{d}", w.id),
                    meter: meter.clone(),
                    destination: d.to_string(),
                    payload: payload.to_string(),
                },
                now,
            )?;
        }
        Ok(())
    }

    async fn send(
        &self,
        id: String,
        meter: &MeterSerial,
        kind: CommandKind,
    ) -> Result<(), FieldError> {
        Ok(hes::commands::submit_if(self.commands.as_ref(), id, meter, kind, BY, None).await?)
    }

    async fn tamper_confirmed(
        &self,
        w: &WorkOrder,
        reason: &str,
        since: Option<DateTime<Utc>>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        let (Some(consumer_no), Some(meter)) = (&w.consumer_no, &w.meter) else {
            return Err(FieldError::Refused(
                "the order has no consumer and meter: record the tamper period at the desk".into(),
            ));
        };
        let detail: serde_json::Value = serde_json::from_str(&w.detail).unwrap_or_default();
        let reported = detail["reported_at"]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok());
        let from = since.or(reported).unwrap_or(w.created_at);
        let code = detail["tamper_code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok());
        // 5.6: the period for billing. A period overlapping one recorded already (this report
        // tried before and stopped half-way, or another inspection of the same tampering) is
        // covered by it: the rest goes on.
        match self.store.tamper_period_record(
            &NewTamperPeriod {
                consumer_no,
                meter,
                tamper_code: code,
                reason,
                from,
                to: now,
                confirmed_by: by,
                source: TamperSource::Inspection,
            },
            now,
        ) {
            Ok(_) => {}
            Err(StoreError::Conflict(why)) => {
                tracing::info!(work_order = w.id, why, "tamper period covered already");
            }
            Err(e) => return Err(e.into()),
        }
        // 5.4–5.5: the supply off through the head-end.
        self.send(
            format!("work-order/{}/disconnect", w.id),
            meter,
            CommandKind::Disconnect,
        )
        .await?;
        self.tell(
            w,
            "tamper_confirmed",
            &["cis", "billing"],
            serde_json::json!({"reason": reason, "tamper_code": code,
                "from": from.to_rfc3339(), "to": now.to_rfc3339(), "disconnected": true}),
            now,
        )
    }

    /// 5.7–5.8: a confirmed tamper dealt with (the site put right, the assessment settled):
    /// the supply reconnected through the head-end and CIS/CRM told.
    pub async fn resolve(
        &self,
        id: u64,
        by: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<WorkOrder, FieldError> {
        let mut w = self.order(id)?;
        let confirmed = w.report.as_deref().is_some_and(|r| {
            serde_json::from_str::<Report>(r).is_ok_and(|r| {
                matches!(
                    r,
                    Report::TamperInspection {
                        finding: Finding::Confirmed,
                        ..
                    }
                )
            })
        });
        if w.state != "completed" || !confirmed {
            return Err(FieldError::Refused(format!(
                "work order {id} is not a completed inspection that confirmed a tamper"
            )));
        }
        if let Some(meter) = w.meter.clone() {
            self.send(
                format!("work-order/{}/reconnect", w.id),
                &meter,
                CommandKind::Reconnect,
            )
            .await?;
        }
        self.tell(
            &w,
            "tamper_resolved",
            &["cis", "billing"],
            serde_json::json!({"reconnected": true, "note": note}),
            now,
        )?;
        let read_at = w.updated_at;
        w.state = "resolved".into();
        w.log = logged(&w.log, "resolved", by, now, note);
        w.updated_at = now;
        self.save(&w, read_at)?;
        Ok(w)
    }

    /// 13.3: a replacement raised for a move to prepaid starts the move once the new meter is
    /// in (the prepaid engine writes its mode and reads it back).
    async fn migrate_after_replacement(
        &self,
        w: &mut WorkOrder,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        let detail: serde_json::Value = serde_json::from_str(&w.detail).unwrap_or_default();
        if detail["then_migrate_to"] != "prepaid" {
            return Ok(());
        }
        let (Some(engine), Some(consumer_no)) = (&self.prepaid, &w.consumer_no) else {
            return Err(FieldError::Refused(
                "the move to prepaid needs the prepaid engine".into(),
            ));
        };
        let opening = model::Paise(detail["opening_balance_paise"].as_i64().unwrap_or(0));
        let m = engine
            .start_migration(consumer_no, true, opening, by, now)
            .await
            .map_err(|e| FieldError::Refused(format!("moving to prepaid: {e}")))?;
        w.log = logged(
            &w.log,
            "migration_started",
            by,
            now,
            &format!("migration {}", m.id),
        );
        Ok(())
    }

    fn replaced(
        &self,
        w: &WorkOrder,
        new_meter: &str,
        old_final_wh: i64,
        new_initial_wh: i64,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        let new_meter = MeterSerial::new(new_meter).map_err(|e| ReportError(e.to_string()))?;
        let consumer_no = w
            .consumer_no
            .as_deref()
            .ok_or_else(|| FieldError::Refused("the order has no consumer".into()))?;
        let service_point = self
            .store
            .service_point_of(consumer_no, now)?
            .ok_or_else(|| FieldError::Refused(format!("{consumer_no} has no service point")))?;
        self.store
            .mdm_install_meter(&new_meter, &service_point, now)?;
        // The new meter hangs where the old one did (its transformer or DCU).
        if let Some(old) = &w.meter
            && let Some(parent) = self.store.mdm_parent_at(&Child::Meter(old.clone()), now)?
        {
            self.store
                .mdm_link(&Child::Meter(new_meter.clone()), &parent, now)?;
        }
        self.tell(
            w,
            "meter_replaced",
            &["cis", "billing"],
            serde_json::json!({"new_meter": new_meter.as_str(), "old_final_wh": old_final_wh,
                "new_initial_wh": new_initial_wh}),
            now,
        )
    }

    // --- new connections (12)

    /// 12.1–12.2: takes a verified request: the consumer, the service point and the contact
    /// recorded, the installation order raised.
    pub fn request_connection(
        &self,
        req: &NewConnection,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<ConnectionRequest, FieldError> {
        let refuse = |why: String| Err(FieldError::Refused(why));
        if req.consumer_no.trim().is_empty() || req.name.trim().is_empty() {
            return refuse("a consumer number and a name are needed".into());
        }
        if req.address.trim().is_empty() {
            return refuse("an address is needed: the crew goes there".into());
        }
        if req.sanctioned_load_w <= 0 {
            return refuse("the sanctioned load must be more than nothing".into());
        }
        if !matches!(req.scheme.as_str(), "prepaid" | "postpaid") {
            return refuse(format!("scheme {:?}: prepaid or postpaid", req.scheme));
        }
        if req.cycle_day.is_some_and(|d| !(1..=28).contains(&d)) {
            return refuse("a cycle day is 1 to 28".into());
        }
        if req.verified_by.trim().is_empty() {
            return refuse("who verified the application?".into());
        }
        match self.store.mdm_node(&req.transformer)? {
            Some(n) if n.kind == NodeKind::Transformer => {}
            _ => return refuse(format!("{} is not a transformer", req.transformer)),
        }
        if self.store.mdm_consumer(&req.consumer_no)?.is_some() {
            return Err(
                StoreError::Conflict(format!("{} is a consumer already", req.consumer_no)).into(),
            );
        }
        // The contact is checked before anything is written.
        self.store
            .contact_check(req.mobile.as_deref(), req.email.as_deref())?;
        let json = serde_json::to_string(req)
            .map_err(|e| StoreError::Corrupt(format!("a request that does not serialise: {e}")))?;
        let detail = serde_json::json!({"connection": req.consumer_no, "scheme": req.scheme,
            "transformer": req.transformer})
        .to_string();
        let key = format!("connection/{}", req.consumer_no);
        let c = self.store.connection_request_start(
            &req.consumer_no,
            &json,
            &NewWorkOrder {
                kind: Kind::Installation.name(),
                source_key: Some(&key),
                consumer_no: Some(&req.consumer_no),
                meter: None,
                address: &req.address,
                detail: &detail,
                due_at: now + Kind::Installation.allowed(),
                created_by: by,
            },
            now,
        )?;
        self.store.mdm_put_consumer(
            &Consumer {
                consumer_no: req.consumer_no.clone(),
                name: req.name.clone(),
                category: req.category.clone(),
                net_metered: false,
            },
            now,
        )?;
        let sp = format!("SP-{}", req.consumer_no);
        self.store.mdm_put_service_point(&ServicePoint {
            id: sp.clone(),
            address: req.address.clone(),
            sanctioned_load_w: req.sanctioned_load_w,
        })?;
        self.store
            .mdm_connect_consumer(&sp, &req.consumer_no, now)?;
        if req.mobile.is_some() || req.email.is_some() {
            self.store.contact_put(
                &req.consumer_no,
                req.mobile.as_deref(),
                req.email.as_deref(),
                now,
            )?;
        }
        Ok(c)
    }

    /// 12.3–12.4: the installation report: the meter installed below its transformer and the
    /// verification reads asked of the head-end.
    async fn installed(
        &self,
        w: &WorkOrder,
        meter: &str,
        transformer: &str,
        initial_wh: i64,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        let consumer_no = w
            .consumer_no
            .as_deref()
            .ok_or_else(|| FieldError::Refused("the order has no consumer".into()))?;
        let mut c = self
            .store
            .connection_request_of(consumer_no)?
            .ok_or_else(|| {
                FieldError::NotFound(format!("no connection request of {consumer_no}"))
            })?;
        let meter = MeterSerial::new(meter).map_err(|e| ReportError(e.to_string()))?;
        match self.store.mdm_node(transformer)? {
            Some(n) if n.kind == NodeKind::Transformer => {}
            _ => {
                return Err(ReportError(format!("{transformer} is not a transformer")).into());
            }
        }
        if let Some((other, _)) = self.store.consumer_of_meter(&meter, now)?
            && other != consumer_no
        {
            return Err(ReportError(format!("meter {meter} supplies {other}")).into());
        }
        let sp = self
            .store
            .service_point_of(consumer_no, now)?
            .ok_or_else(|| FieldError::Refused(format!("{consumer_no} has no service point")))?;
        self.store.mdm_install_meter(&meter, &sp, now)?;
        self.store
            .mdm_link(&Child::Meter(meter.clone()), transformer, now)?;
        c.meter = Some(meter);
        c.initial_wh = Some(initial_wh);
        c.log = logged(&c.log, "installed", BY, now, "");
        self.read_new_meter(&mut c, now).await
    }

    /// Asks the head-end for the new meter's instantaneous, interval and event data (12.4).
    async fn read_new_meter(
        &self,
        c: &mut ConnectionRequest,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        let Some(meter) = c.meter.clone() else {
            return Err(FieldError::Refused("no meter installed yet".into()));
        };
        c.attempts += 1;
        let from = now - Duration::hours(2);
        let reads = [
            ("instantaneous", CommandKind::ReadInstantaneous),
            ("intervals", CommandKind::ReadBlockLoad { from, to: now }),
            (
                "events",
                CommandKind::ReadEvents {
                    log: EventCategory::Power,
                    from: from - Duration::days(1),
                    to: now,
                },
            ),
        ];
        let ids: Vec<String> = reads
            .iter()
            .map(|(name, _)| format!("connection/{}/{name}/{}", c.id, c.attempts))
            .collect();
        // Saved before anything is sent: a try that stops half-way is followed as failed and
        // the next uses new ids, never an id again with another body.
        c.commands = Some(serde_json::to_string(&ids).unwrap_or_default());
        c.state = "reading".into();
        c.log = logged(&c.log, "reading", BY, now, "");
        c.updated_at = now;
        self.store.connection_request_save(c)?;
        for (id, (_, kind)) in ids.into_iter().zip(reads) {
            self.send(id, &meter, kind).await?;
        }
        Ok(())
    }

    /// Moves every connection waiting on its reads on: confirmed (12.5–12.6) when they
    /// succeeded and the register is at or past the initial reading, read again when one
    /// failed, failed after three tries. How many changed.
    pub async fn follow(&self, now: DateTime<Utc>) -> Result<usize, FieldError> {
        let Some(commands) = &self.commands else {
            return Ok(0);
        };
        let mut moved = 0;
        for mut c in self.store.connection_requests(Some("reading"), 0, 200)? {
            match self.follow_one(commands, &mut c, now).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                // One connection's trouble does not hold up the others.
                Err(e) => tracing::warn!(connection = c.id, error = %e, "not followed"),
            }
        }
        Ok(moved)
    }

    /// Moves one connection on once its reads are over; false while they run.
    async fn follow_one(
        &self,
        commands: &Commands,
        c: &mut ConnectionRequest,
        now: DateTime<Utc>,
    ) -> Result<bool, FieldError> {
        let ids: Vec<String> = c
            .commands
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let mut states = Vec::new();
        for id in &ids {
            states.push(
                commands
                    .status(&CommandId(id.clone()))
                    .await?
                    .map(|s| s.state),
            );
        }
        // A command never sent (a try stopped half-way) counts as failed.
        if states.iter().any(|s| s.is_some_and(|s| !s.is_final())) {
            return Ok(false);
        }
        if states.iter().all(|s| *s == Some(CommandState::Succeeded)) {
            match self.verified_register(c)? {
                Ok(register) => self.confirm(c, register, now).await?,
                Err(why) => self.retry_or_fail(c, why, now).await?,
            }
        } else {
            self.retry_or_fail(c, "a verification read failed".into(), now)
                .await?;
        }
        Ok(true)
    }

    /// The import register read from the new meter, if it is at or past the initial reading.
    fn verified_register(&self, c: &ConnectionRequest) -> Result<Result<i64, String>, FieldError> {
        let Some(meter) = &c.meter else {
            return Ok(Err("no meter".into()));
        };
        let Some(read) = self.store.mdm_latest_instantaneous(meter)? else {
            return Ok(Err("no instantaneous reading reached the MDM".into()));
        };
        let register = read.import_wh.unwrap_or(-1);
        let initial = c.initial_wh.unwrap_or(0);
        Ok(if register >= initial {
            Ok(register)
        } else {
            Err(format!(
                "the meter reads {register} Wh, below the installation report's {initial} Wh"
            ))
        })
    }

    async fn retry_or_fail(
        &self,
        c: &mut ConnectionRequest,
        why: String,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        c.last_error = Some(why.clone());
        if c.attempts < READ_TRIES {
            c.log = logged(&c.log, "reading_again", BY, now, &why);
            self.read_new_meter(c, now).await
        } else {
            c.state = "failed".into();
            c.log = logged(&c.log, "failed", BY, now, &why);
            c.updated_at = now;
            self.store.connection_request_save(c)?;
            Ok(())
        }
    }

    async fn confirm(
        &self,
        c: &mut ConnectionRequest,
        register: i64,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        let req: NewConnection = serde_json::from_str(&c.request)
            .map_err(|e| StoreError::Corrupt(format!("connection request {}: {e}", c.id)))?;
        let Some(meter) = c.meter.clone() else {
            return Err(FieldError::Refused("no meter installed".into()));
        };
        let today = mdm::calendar::ist_date(now);
        if req.scheme == "postpaid" {
            self.store.billing_account_put(
                &BillingAccount {
                    consumer_no: c.consumer_no.clone(),
                    cycle_day: req.cycle_day.unwrap_or(1),
                    contract_demand: None,
                    opening_arrears: model::Paise::ZERO,
                    billed_from: Some(today),
                    closed_on: None,
                },
                now,
            )?;
        } else if let Some(engine) = &self.prepaid {
            // The meter's payment mode written through the head-end, the wallet opened.
            engine
                .start_migration(&c.consumer_no, true, model::Paise::ZERO, BY, now)
                .await
                .map_err(|e| FieldError::Refused(format!("moving to prepaid: {e}")))?;
        } else {
            self.store.prepaid_enrol(&c.consumer_no, now, Some(now))?;
        }
        let payload = serde_json::json!({
            "kind": "connection_confirmed",
            "connection": store::field::connection_number(c.id, c.created_at),
            "consumer_no": c.consumer_no,
            "meter": meter.as_str(),
            "scheme": req.scheme,
            "initial_reading_wh": c.initial_wh,
            "register_read_wh": register,
            "at": now.to_rfc3339(),
        })
        .to_string();
        for d in ["billing", "cis"] {
            self.store.mdm_route(
                &RoutedMessage {
                    key: format!("connection/{}/confirmed/{d}", c.id),
                    meter: meter.clone(),
                    destination: d.into(),
                    payload: payload.clone(),
                },
                now,
            )?;
        }
        c.state = "confirmed".into();
        c.last_error = None;
        c.log = logged(&c.log, "confirmed", BY, now, "");
        c.updated_at = now;
        self.store.connection_request_save(c)?;
        Ok(())
    }
}
