//! The network hierarchy (substation → feeder → transformer → DCU → meter) and the connection of
//! meters to service points and consumers, each relation kept over time: a change closes the
//! relation in force at its start and opens the new one, so a question "as of" any instant gets
//! the answer that was true then.

use chrono::{DateTime, Utc};
use model::MeterSerial;
use rusqlite::{OptionalExtension, Transaction, params};

use crate::{Result, Store, StoreError, from_ms, ms, serial};

/// A node of the network above the meters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Substation,
    Feeder,
    Transformer,
    Dcu,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Substation => "substation",
            NodeKind::Feeder => "feeder",
            NodeKind::Transformer => "transformer",
            NodeKind::Dcu => "dcu",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            NodeKind::Substation,
            NodeKind::Feeder,
            NodeKind::Transformer,
            NodeKind::Dcu,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkNode {
    pub id: String,
    pub kind: NodeKind,
    pub name: String,
}

/// What hangs below a node: another node, or a meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Child {
    Node(NodeKind, String),
    Meter(MeterSerial),
}

impl Child {
    fn key(&self) -> Result<(&'static str, &str)> {
        match self {
            Child::Node(NodeKind::Substation, _) => Err(StoreError::Invalid(
                "a substation is the top of the hierarchy".into(),
            )),
            Child::Node(kind, id) => Ok((kind.as_str(), id)),
            Child::Meter(m) => Ok(("meter", m.as_str())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub consumer_no: String,
    pub name: String,
    /// Tariff and VEE category: "residential", "commercial", …
    pub category: String,
    pub net_metered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePoint {
    pub id: String,
    pub address: String,
    pub sanctioned_load_w: i64,
}

/// A meter that measured a consumer's supply, and over which span `[from, to)` (within the span
/// asked about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub meter: MeterSerial,
    pub service_point: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// One relation kept over time: `table` holds (`key`, valid_from, valid_to, `value`).
struct Timeline {
    table: &'static str,
    key: &'static [&'static str],
    value: &'static str,
}

const NETWORK_LINK: Timeline = Timeline {
    table: "network_link",
    key: &["child_kind", "child"],
    value: "parent",
};
const SERVICE_POINT_CONSUMER: Timeline = Timeline {
    table: "service_point_consumer",
    key: &["service_point"],
    value: "consumer_no",
};
const METER_INSTALLATION: Timeline = Timeline {
    table: "meter_installation",
    key: &["meter"],
    value: "service_point",
};

impl Timeline {
    fn key_match(&self) -> String {
        self.key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ?{}", i + 1))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Sets the relation to `value` from `from` on: closes the one in force (if it differs) and
    /// opens the new one. A change dated before the latest change is refused (history is
    /// written forwards); the same value again changes nothing.
    fn set(
        &self,
        tx: &Transaction<'_>,
        key: &[&str],
        value: &str,
        from: DateTime<Utc>,
    ) -> Result<bool> {
        let n = self.key.len();
        let latest: Option<(i64, Option<i64>, String)> = tx
            .query_row(
                &format!(
                    "SELECT valid_from, valid_to, {} FROM {} WHERE {} \
                     ORDER BY valid_from DESC LIMIT 1",
                    self.value,
                    self.table,
                    self.key_match()
                ),
                rusqlite::params_from_iter(key.iter()),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let from_ms = ms(from);
        if let Some((start, end, current)) = latest {
            if end.is_none() && current == value {
                return Ok(false);
            }
            if from_ms <= start || end.is_some_and(|e| from_ms < e) {
                return Err(StoreError::Invalid(format!(
                    "{} of {} changes at {from}, before its latest change",
                    self.table,
                    key.join("/")
                )));
            }
            if end.is_none() {
                tx.execute(
                    &format!(
                        "UPDATE {} SET valid_to = ?{} WHERE {} AND valid_from = ?{}",
                        self.table,
                        n + 1,
                        self.key_match(),
                        n + 2
                    ),
                    rusqlite::params_from_iter(
                        key.iter()
                            .map(|k| rusqlite::types::Value::Text(k.to_string()))
                            .chain([
                                rusqlite::types::Value::Integer(from_ms),
                                rusqlite::types::Value::Integer(start),
                            ]),
                    ),
                )?;
            }
        }
        let columns = self.key.join(", ");
        let placeholders = (1..=n + 2)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        tx.execute(
            &format!(
                "INSERT INTO {} ({columns}, valid_from, {}) VALUES ({placeholders})",
                self.table, self.value
            ),
            rusqlite::params_from_iter(
                key.iter()
                    .map(|k| rusqlite::types::Value::Text(k.to_string()))
                    .chain([
                        rusqlite::types::Value::Integer(from_ms),
                        rusqlite::types::Value::Text(value.to_string()),
                    ]),
            ),
        )?;
        Ok(true)
    }

    /// The value in force at `at`.
    fn at(&self, store: &Store, key: &[&str], at: DateTime<Utc>) -> Result<Option<String>> {
        let n = self.key.len();
        let conn = store.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {} FROM {} WHERE {} AND valid_from <= ?{} \
             AND (valid_to IS NULL OR valid_to > ?{}) ORDER BY valid_from DESC LIMIT 1",
            self.value,
            self.table,
            self.key_match(),
            n + 1,
            n + 1
        ))?;
        let params = key
            .iter()
            .map(|k| rusqlite::types::Value::Text(k.to_string()))
            .chain([rusqlite::types::Value::Integer(ms(at))]);
        Ok(stmt
            .query_row(rusqlite::params_from_iter(params), |r| r.get(0))
            .optional()?)
    }
}

/// Adds a node, or renames it. Its kind cannot change.
fn put_node(tx: &Transaction<'_>, node: &NetworkNode) -> Result<()> {
    let kind: Option<String> = tx
        .query_row(
            "SELECT kind FROM network_node WHERE id = ?1",
            params![node.id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(kind) = kind.filter(|k| k != node.kind.as_str()) {
        return Err(StoreError::Conflict(format!(
            "{} is a {kind}, not a {}",
            node.id,
            node.kind.as_str()
        )));
    }
    tx.execute(
        "INSERT INTO network_node (id, kind, name) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        params![node.id, node.kind.as_str(), node.name],
    )?;
    Ok(())
}

/// Hangs `child` below node `parent` from `from` on.
fn link(tx: &Transaction<'_>, child: &Child, parent: &str, from: DateTime<Utc>) -> Result<bool> {
    let (kind, id) = child.key()?;
    let parent_kind: Option<String> = tx
        .query_row(
            "SELECT kind FROM network_node WHERE id = ?1",
            params![parent],
            |r| r.get(0),
        )
        .optional()?;
    let Some(parent_kind) = parent_kind else {
        return Err(StoreError::NotFound(format!("network node {parent}")));
    };
    if !may_hang_below(kind, &parent_kind) {
        return Err(StoreError::Invalid(format!(
            "a {kind} cannot hang below a {parent_kind}"
        )));
    }
    NETWORK_LINK.set(tx, &[kind, id], parent, from)
}

fn put_consumer(tx: &Transaction<'_>, c: &Consumer, now: DateTime<Utc>) -> Result<()> {
    tx.execute(
        "INSERT INTO consumer (consumer_no, name, category, net_metered, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (consumer_no) DO UPDATE SET \
         name = excluded.name, category = excluded.category, \
         net_metered = excluded.net_metered",
        params![c.consumer_no, c.name, c.category, c.net_metered, ms(now)],
    )?;
    Ok(())
}

fn put_service_point(tx: &Transaction<'_>, sp: &ServicePoint) -> Result<()> {
    tx.execute(
        "INSERT INTO service_point (id, address, sanctioned_load_w) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, \
         sanctioned_load_w = excluded.sanctioned_load_w",
        params![sp.id, sp.address, sp.sanctioned_load_w],
    )?;
    Ok(())
}

/// Installs `meter` at `service_point` from `from` on, removing the meter installed there.
fn install_meter(
    tx: &Transaction<'_>,
    meter: &MeterSerial,
    service_point: &str,
    from: DateTime<Utc>,
) -> Result<bool> {
    let later: Option<String> = tx
        .query_row(
            "SELECT meter FROM meter_installation WHERE service_point = ?1 AND meter <> ?2 \
             AND valid_from >= ?3 LIMIT 1",
            params![service_point, meter.as_str(), ms(from)],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = later {
        return Err(StoreError::Invalid(format!(
            "{other} was installed at {service_point} at or after {from}"
        )));
    }
    tx.execute(
        "UPDATE meter_installation SET valid_to = ?3 WHERE service_point = ?1 \
         AND meter <> ?2 AND valid_to IS NULL",
        params![service_point, meter.as_str(), ms(from)],
    )?;
    METER_INSTALLATION.set(tx, &[meter.as_str()], service_point, from)
}

/// A consumer connected at a service point with a meter, below a network node, from a time:
/// one line of a network import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub consumer: Consumer,
    pub service_point: ServicePoint,
    pub meter: MeterSerial,
    /// The DCU or transformer the meter hangs below.
    pub parent: String,
    pub since: DateTime<Utc>,
}

/// A set of network nodes (each with its parent, if any) and connections, taken in together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkImport {
    pub nodes: Vec<(NetworkNode, Option<String>)>,
    pub connections: Vec<Connection>,
    /// When the node links start.
    pub since: DateTime<Utc>,
}

/// What a network import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkImportCounts {
    pub nodes: u64,
    pub links_changed: u64,
    pub connections: u64,
    pub installations_changed: u64,
}

impl Store {
    fn transact<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Adds a node, or renames it. Its kind cannot change.
    pub fn mdm_put_node(&self, node: &NetworkNode) -> Result<()> {
        self.transact(|tx| put_node(tx, node))
    }

    pub fn mdm_node(&self, id: &str) -> Result<Option<NetworkNode>> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT kind, name FROM network_node WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(kind, name)| {
            Ok(NetworkNode {
                id: id.to_string(),
                kind: NodeKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("node kind {kind}")))?,
                name,
            })
        })
        .transpose()
    }

    /// Hangs `child` below node `parent` from `from` on. Returns whether anything changed.
    pub fn mdm_link(&self, child: &Child, parent: &str, from: DateTime<Utc>) -> Result<bool> {
        self.transact(|tx| link(tx, child, parent, from))
    }

    /// The parent of `child` at `at`.
    pub fn mdm_parent_at(&self, child: &Child, at: DateTime<Utc>) -> Result<Option<String>> {
        let (kind, id) = child.key()?;
        NETWORK_LINK.at(self, &[kind, id], at)
    }

    /// Every meter below `node` (at any depth) at `at`, by serial.
    pub fn mdm_meters_under(&self, node: &str, at: DateTime<Utc>) -> Result<Vec<MeterSerial>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "WITH RECURSIVE below (kind, id) AS ( \
                 SELECT 'node', ?1 \
                 UNION \
                 SELECT l.child_kind, l.child FROM network_link l JOIN below b ON l.parent = b.id \
                 WHERE b.kind <> 'meter' AND l.valid_from <= ?2 \
                 AND (l.valid_to IS NULL OR l.valid_to > ?2)) \
             SELECT id FROM below WHERE kind = 'meter' ORDER BY id",
        )?;
        let mut rows = stmt.query(params![node, ms(at)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(serial(r.get(0)?)?);
        }
        Ok(out)
    }

    /// Adds a consumer or updates their details.
    pub fn mdm_put_consumer(&self, c: &Consumer, now: DateTime<Utc>) -> Result<()> {
        self.transact(|tx| put_consumer(tx, c, now))
    }

    pub fn mdm_consumer(&self, consumer_no: &str) -> Result<Option<Consumer>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, category, net_metered FROM consumer WHERE consumer_no = ?1",
                params![consumer_no],
                |r| {
                    Ok(Consumer {
                        consumer_no: consumer_no.to_string(),
                        name: r.get(0)?,
                        category: r.get(1)?,
                        net_metered: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Adds a service point or updates its details.
    pub fn mdm_put_service_point(&self, sp: &ServicePoint) -> Result<()> {
        self.transact(|tx| put_service_point(tx, sp))
    }

    /// Connects `consumer_no` at `service_point` from `from` on.
    pub fn mdm_connect_consumer(
        &self,
        service_point: &str,
        consumer_no: &str,
        from: DateTime<Utc>,
    ) -> Result<bool> {
        self.transact(|tx| SERVICE_POINT_CONSUMER.set(tx, &[service_point], consumer_no, from))
    }

    /// Installs `meter` at `service_point` from `from` on. A service point has one meter at a
    /// time: a meter change is the new meter installed there, which removes the old one.
    pub fn mdm_install_meter(
        &self,
        meter: &MeterSerial,
        service_point: &str,
        from: DateTime<Utc>,
    ) -> Result<bool> {
        self.transact(|tx| install_meter(tx, meter, service_point, from))
    }

    /// Takes a network import in, all or nothing: nodes (parents first in the list or already
    /// stored), then for each connection the consumer, the service point, the consumer there,
    /// the meter installed there and hung below its parent, all from `since`. Importing the
    /// same file again changes nothing.
    pub fn mdm_import_network(
        &self,
        import: &NetworkImport,
        now: DateTime<Utc>,
    ) -> Result<NetworkImportCounts> {
        self.transact(|tx| {
            let mut counts = NetworkImportCounts::default();
            for (node, _) in &import.nodes {
                put_node(tx, node)?;
                counts.nodes += 1;
            }
            for (node, parent) in &import.nodes {
                if let Some(parent) = parent {
                    let child = Child::Node(node.kind, node.id.clone());
                    counts.links_changed += u64::from(link(tx, &child, parent, import.since)?);
                }
            }
            for c in &import.connections {
                put_consumer(tx, &c.consumer, now)?;
                put_service_point(tx, &c.service_point)?;
                SERVICE_POINT_CONSUMER.set(
                    tx,
                    &[&c.service_point.id],
                    &c.consumer.consumer_no,
                    c.since,
                )?;
                counts.installations_changed +=
                    u64::from(install_meter(tx, &c.meter, &c.service_point.id, c.since)?);
                counts.links_changed += u64::from(link(
                    tx,
                    &Child::Meter(c.meter.clone()),
                    &c.parent,
                    c.since,
                )?);
                counts.connections += 1;
            }
            Ok(counts)
        })
    }

    /// The service point `meter` is installed at and the consumer connected there, at `at`.
    pub fn mdm_connection_at(
        &self,
        meter: &MeterSerial,
        at: DateTime<Utc>,
    ) -> Result<Option<(ServicePoint, Consumer)>> {
        let Some(sp_id) = METER_INSTALLATION.at(self, &[meter.as_str()], at)? else {
            return Ok(None);
        };
        let Some(consumer_no) = SERVICE_POINT_CONSUMER.at(self, &[&sp_id], at)? else {
            return Ok(None);
        };
        let sp = self
            .conn()
            .query_row(
                "SELECT address, sanctioned_load_w FROM service_point WHERE id = ?1",
                params![sp_id],
                |r| {
                    Ok(ServicePoint {
                        id: sp_id.clone(),
                        address: r.get(0)?,
                        sanctioned_load_w: r.get(1)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::Corrupt(format!("service point {sp_id} missing")))?;
        let consumer = self
            .mdm_consumer(&consumer_no)?
            .ok_or_else(|| StoreError::Corrupt(format!("consumer {consumer_no} missing")))?;
        Ok(Some((sp, consumer)))
    }

    /// The category of the consumer `meter` measured at `at` (for per-category settings).
    pub fn mdm_category_of(
        &self,
        meter: &MeterSerial,
        at: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT c.category FROM meter_installation i \
             JOIN service_point_consumer s ON s.service_point = i.service_point \
             JOIN consumer c ON c.consumer_no = s.consumer_no \
             WHERE i.meter = ?1 AND i.valid_from <= ?2 AND (i.valid_to IS NULL OR i.valid_to > ?2) \
             AND s.valid_from <= ?2 AND (s.valid_to IS NULL OR s.valid_to > ?2) LIMIT 1",
        )?;
        Ok(stmt
            .query_row(params![meter.as_str(), ms(at)], |r| r.get(0))
            .optional()?)
    }

    /// The meters that measured `consumer_no`'s supply at some time in `[from, to)`: each
    /// installation clipped to the span when the consumer was connected at its service point.
    pub fn mdm_meters_of_consumer(
        &self,
        consumer_no: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Installation>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT i.meter, i.service_point, \
                 MAX(i.valid_from, c.valid_from, ?2), \
                 MIN(COALESCE(i.valid_to, ?3), COALESCE(c.valid_to, ?3), ?3) \
             FROM service_point_consumer c \
             JOIN meter_installation i ON i.service_point = c.service_point \
             WHERE c.consumer_no = ?1 \
               AND i.valid_from < ?3 AND (i.valid_to IS NULL OR i.valid_to > ?2) \
               AND c.valid_from < ?3 AND (c.valid_to IS NULL OR c.valid_to > ?2) \
               AND i.valid_from < COALESCE(c.valid_to, ?3) \
               AND (i.valid_to IS NULL OR i.valid_to > c.valid_from) \
             ORDER BY 3, i.meter",
        )?;
        let mut rows = stmt.query(params![consumer_no, ms(from), ms(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Installation {
                meter: serial(r.get(0)?)?,
                service_point: r.get(1)?,
                from: from_ms(r.get(2)?)?,
                to: from_ms(r.get(3)?)?,
            });
        }
        Ok(out)
    }
}

/// Hangs `meter` below DCU `dcu` from `at` inside the caller's transaction (a network change
/// the head-end saw). A DCU not known yet is added, named by its id, below the node the meter
/// hung from (so the meter stays in the tree). A change dated before the meter's latest is
/// stale, and an id the network knows as another kind of node cannot be the meter's DCU: both
/// change nothing. Returns whether anything changed.
pub(crate) fn link_meter_to_dcu(
    tx: &Transaction<'_>,
    meter: &MeterSerial,
    dcu: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let kind: Option<String> = tx
        .query_row(
            "SELECT kind FROM network_node WHERE id = ?1",
            params![dcu],
            |r| r.get(0),
        )
        .optional()?;
    match kind.as_deref() {
        None => {
            tx.execute(
                "INSERT INTO network_node (id, kind, name) VALUES (?1, 'dcu', ?1)",
                params![dcu],
            )?;
            let previous = tx
                .query_row(
                    "SELECT l.parent, n.kind FROM network_link l \
                     JOIN network_node n ON n.id = l.parent \
                     WHERE l.child_kind = 'meter' AND l.child = ?1 AND l.valid_to IS NULL",
                    params![meter.as_str()],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?;
            if let Some((parent, _)) = previous.filter(|(_, kind)| kind == "transformer") {
                NETWORK_LINK.set(tx, &["dcu", dcu], &parent, at)?;
            }
        }
        Some("dcu") => {}
        Some(_) => return Ok(false),
    }
    match NETWORK_LINK.set(tx, &["meter", meter.as_str()], dcu, at) {
        Err(StoreError::Invalid(_)) => Ok(false),
        other => other,
    }
}

/// Which kind of child may hang below which kind of node (meters below a DCU, or directly below
/// a transformer when they connect without one).
fn may_hang_below(child: &str, parent: &str) -> bool {
    matches!(
        (child, parent),
        ("feeder", "substation")
            | ("transformer", "feeder")
            | ("dcu", "transformer")
            | ("meter", "dcu")
            | ("meter", "transformer")
    )
}
