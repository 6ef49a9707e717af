//! `urja-network/1`: the file a utility loads its network and consumers from (documented in
//! `docs/network-import.md`): the substations, feeders, transformers and DCUs with their
//! parents, and one line per connection (consumer, service point, meter and the node the meter
//! hangs below). Parsing checks everything before anything is stored.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, Utc};
use model::MeterSerial;
use serde::Deserialize;
use store::mdm::{Connection, Consumer, NetworkImport, NetworkNode, NodeKind, ServicePoint};

/// The format name a file must carry.
pub const FORMAT: &str = "urja-network/1";

#[derive(Debug, thiserror::Error)]
pub enum NetworkFileError {
    #[error("not a network file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the file's format is {found:?}; this program reads {FORMAT:?}")]
    Format { found: String },
    #[error("node {id}: unknown kind {kind:?} (substation, feeder, transformer or dcu)")]
    Kind { id: String, kind: String },
    #[error("{what} {id:?} appears twice")]
    Duplicate { what: &'static str, id: String },
    #[error("connection {consumer_no}: {detail}")]
    Connection { consumer_no: String, detail: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    /// When the links of the nodes start (default: the Unix epoch, "always").
    since: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    nodes: Vec<NodeLine>,
    #[serde(default)]
    connections: Vec<ConnectionLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeLine {
    id: String,
    kind: String,
    name: String,
    parent: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionLine {
    consumer_no: String,
    name: String,
    category: String,
    #[serde(default)]
    net_metered: bool,
    service_point: String,
    address: String,
    sanctioned_load_w: i64,
    meter: String,
    parent: String,
    since: Option<DateTime<FixedOffset>>,
}

/// Reads a `urja-network/1` file.
pub fn parse(bytes: &[u8]) -> Result<NetworkImport, NetworkFileError> {
    let file: File = serde_json::from_slice(bytes)?;
    if file.format != FORMAT {
        return Err(NetworkFileError::Format { found: file.format });
    }
    let since = file
        .since
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |t| t.with_timezone(&Utc));
    let mut seen = HashSet::new();
    let mut nodes = Vec::with_capacity(file.nodes.len());
    for n in file.nodes {
        let kind = NodeKind::parse(&n.kind).ok_or_else(|| NetworkFileError::Kind {
            id: n.id.clone(),
            kind: n.kind.clone(),
        })?;
        if !seen.insert(n.id.clone()) {
            return Err(NetworkFileError::Duplicate {
                what: "node",
                id: n.id,
            });
        }
        nodes.push((
            NetworkNode {
                id: n.id,
                kind,
                name: n.name,
            },
            n.parent,
        ));
    }
    let (mut consumers, mut meters) = (HashSet::new(), HashSet::new());
    let mut connections = Vec::with_capacity(file.connections.len());
    for c in file.connections {
        let bad = |detail: String| NetworkFileError::Connection {
            consumer_no: c.consumer_no.clone(),
            detail,
        };
        let meter = MeterSerial::new(c.meter.clone()).map_err(|e| bad(format!("meter: {e}")))?;
        if c.sanctioned_load_w <= 0 {
            return Err(bad(format!("sanctioned load {} W", c.sanctioned_load_w)));
        }
        if !consumers.insert(c.consumer_no.clone()) {
            return Err(NetworkFileError::Duplicate {
                what: "consumer",
                id: c.consumer_no,
            });
        }
        if !meters.insert(meter.clone()) {
            return Err(NetworkFileError::Duplicate {
                what: "meter",
                id: c.meter,
            });
        }
        connections.push(Connection {
            consumer: Consumer {
                consumer_no: c.consumer_no,
                name: c.name,
                category: c.category,
                net_metered: c.net_metered,
            },
            service_point: ServicePoint {
                id: c.service_point,
                address: c.address,
                sanctioned_load_w: c.sanctioned_load_w,
            },
            meter,
            parent: c.parent,
            since: c.since.map_or(since, |t| t.with_timezone(&Utc)),
        });
    }
    Ok(NetworkImport {
        nodes,
        connections,
        since,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
      "format": "urja-network/1",
      "since": "2026-01-01T00:00:00+05:30",
      "nodes": [
        {"id": "SS-GOMTI", "kind": "substation", "name": "Gomti Nagar 33/11 kV"},
        {"id": "F-11", "kind": "feeder", "name": "Feeder 11", "parent": "SS-GOMTI"},
        {"id": "DT-11-4", "kind": "transformer", "name": "DT 11/4 100 kVA", "parent": "F-11"}
      ],
      "connections": [
        {"consumer_no": "1100234", "name": "Asha Devi", "category": "residential",
         "service_point": "SP-1100234", "address": "12 Vikas Nagar, Lucknow",
         "sanctioned_load_w": 3000, "meter": "URJ10000001", "parent": "DT-11-4"}
      ]
    }"#;

    #[test]
    fn a_file_is_read_with_its_times_in_utc() {
        let import = parse(FILE.as_bytes()).unwrap();
        assert_eq!(import.nodes.len(), 3);
        assert_eq!(import.nodes[1].1.as_deref(), Some("SS-GOMTI"));
        assert_eq!(
            import.since,
            "2025-12-31T18:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let c = &import.connections[0];
        assert_eq!(c.meter.as_str(), "URJ10000001");
        assert_eq!(c.since, import.since);
        assert!(!c.consumer.net_metered);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let err = |text: &str| parse(text.as_bytes()).unwrap_err().to_string();
        assert!(err(&FILE.replace("urja-network/1", "urja-network/9")).contains("format"));
        assert!(err(&FILE.replace("\"feeder\"", "\"pole\"")).contains("unknown kind \"pole\""));
        assert!(
            err(&FILE.replace("\"F-11\", \"kind\"", "\"SS-GOMTI\", \"kind\"")).contains("twice")
        );
        assert!(err(&FILE.replace("3000", "-5")).contains("sanctioned load"));
        assert!(err(&FILE.replace("URJ10000001", "")).contains("meter"));
        assert!(
            err(&FILE.replace("\"name\": \"Asha Devi\"", "\"nmae\": \"x\""))
                .contains("not a network file")
        );
        assert!(err("{").contains("not a network file"));
    }
}
