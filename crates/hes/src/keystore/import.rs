//! Import of meters and their keys from a key file: the one way meters and keys come into the
//! head-end. Two formats, each as JSON or CSV (documented in `docs/key-import.md`):
//!
//! - `urja-sim-keys/1`, the simulator's key file (`urja sim --keys-out`);
//! - `urja-meters/1`, the deployment format: a manufacturer's key delivery re-shaped by the
//!   utility.
//!
//! A JSON file names its format in its `format` field. A CSV file is the simulator's when its
//! header has a `hls_secret_utility` column, and `urja-meters/1` otherwise.
//!
//! Parsing is all-or-nothing: any error and nothing is imported. Errors name the record (its
//! number, serial and CSV line) and the field, and describe what is wrong with a value without
//! ever showing it, since most values are secrets.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use dlms::security::{GlobalKeys, SystemTitle};
use model::{MeterKind, MeterSerial, MeterSerialError};
use serde_json::{Map, Value as Json};

use super::{HexProblem, decode_hex};
use crate::{MeterCredentials, Transport};

/// The format tag of the simulator's key file.
pub const SIM_FORMAT: &str = "urja-sim-keys/1";
/// The format tag of the deployment key file.
pub const DEPLOYMENT_FORMAT: &str = "urja-meters/1";

/// Defaults of the optional fields.
pub const DEFAULT_PORT: u16 = 4059;
pub const DEFAULT_SERVER_ADDRESS: u16 = 1;
pub const DEFAULT_GROUP: &str = "default";

/// How to read a key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileFormat {
    Json,
    Csv,
    /// JSON when the first byte that is not white space is `{`, else CSV.
    #[default]
    Auto,
}

/// One meter as a key file describes it: where and how to reach it, and its secrets. `Debug`
/// shows no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedMeter {
    pub serial: MeterSerial,
    pub kind: MeterKind,
    /// Host name or IP address of the meter (or of the modem or DCU in front of it).
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    /// The server's logical device address (server SAP), 1 for the management logical device.
    pub server_address: u16,
    /// The data concentrator the meter is reached through, if any.
    pub dcu: Option<String>,
    /// The collection group (schedules and reports are per group).
    pub group: String,
    pub credentials: MeterCredentials,
}

/// Which record of the file an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    /// 1-based number of the meter in the file.
    pub number: usize,
    /// Its serial, once known to be valid.
    pub serial: Option<MeterSerial>,
    /// Its line, in a CSV file.
    pub line: Option<u64>,
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "meter {}", self.number)?;
        match (&self.serial, self.line) {
            (Some(serial), Some(line)) => write!(f, " ({serial}, line {line})"),
            (Some(serial), None) => write!(f, " ({serial})"),
            (None, Some(line)) => write!(f, " (line {line})"),
            (None, None) => Ok(()),
        }
    }
}

/// What is wrong with one field. Never carries the field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    Missing,
    Hex(HexProblem),
    NotText,
    NotNumber,
    OutOfRange {
        min: u64,
        max: u64,
    },
    Serial(MeterSerialError),
    /// The value is not one of these words.
    NotOneOf(&'static str),
    /// The value does not have this shape.
    Invalid(&'static str),
    /// Not a field of this format (a misspelt optional field would otherwise go unnoticed).
    Unknown,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::Missing => f.write_str("missing"),
            FieldProblem::Hex(p) => p.fmt(f),
            FieldProblem::NotText => f.write_str("expected a string"),
            FieldProblem::NotNumber => f.write_str("expected a whole number"),
            FieldProblem::OutOfRange { min, max } => {
                write!(f, "expected a whole number from {min} to {max}")
            }
            FieldProblem::Serial(e) => e.fmt(f),
            FieldProblem::NotOneOf(words) => write!(f, "expected one of {words}"),
            FieldProblem::Invalid(shape) => write!(f, "expected {shape}"),
            FieldProblem::Unknown => write!(f, "not a field of {DEPLOYMENT_FORMAT}"),
        }
    }
}

/// Why a key file cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("not valid JSON: {problem} at line {line}, column {column}")]
    Json {
        problem: &'static str,
        line: usize,
        column: usize,
    },
    #[error("not valid CSV: {0}")]
    Csv(String),
    #[error("{0}")]
    Shape(String),
    #[error("unknown key file format (expected \"{SIM_FORMAT}\" or \"{DEPLOYMENT_FORMAT}\")")]
    UnknownFormat,
    #[error("CSV header: {0}")]
    Header(String),
    #[error("{record}: {field}: {problem}")]
    Field {
        record: RecordRef,
        field: String,
        problem: FieldProblem,
    },
    #[error("{record}: {problem}")]
    Record {
        record: RecordRef,
        problem: &'static str,
    },
    #[error("meter {serial} appears twice: {first} and {second}")]
    DuplicateSerial {
        serial: MeterSerial,
        first: RecordRef,
        second: RecordRef,
    },
    #[error("{first} and {second} have the same system title")]
    DuplicateSystemTitle { first: RecordRef, second: RecordRef },
    #[error("the file lists no meters")]
    NoMeters,
}

/// Parses a whole key file. All or nothing: the first problem found is the error.
pub fn parse_key_file(bytes: &[u8], hint: FileFormat) -> Result<Vec<ImportedMeter>, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let format = match hint {
        FileFormat::Auto => match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => FileFormat::Json,
            _ => FileFormat::Csv,
        },
        other => other,
    };
    let meters = match format {
        FileFormat::Json | FileFormat::Auto => parse_json(bytes)?,
        FileFormat::Csv => parse_csv(bytes)?,
    };
    check_unique(&meters)?;
    if meters.is_empty() {
        return Err(ImportError::NoMeters);
    }
    Ok(meters.into_iter().map(|(meter, _)| meter).collect())
}

fn check_unique(meters: &[(ImportedMeter, RecordRef)]) -> Result<(), ImportError> {
    let mut serials: HashMap<&MeterSerial, &RecordRef> = HashMap::new();
    let mut titles: HashMap<SystemTitle, &RecordRef> = HashMap::new();
    for (meter, at) in meters {
        if let Some(first) = serials.insert(&meter.serial, at) {
            return Err(ImportError::DuplicateSerial {
                serial: meter.serial.clone(),
                first: first.clone(),
                second: at.clone(),
            });
        }
        match titles.entry(meter.credentials.system_title) {
            Entry::Occupied(first) => {
                return Err(ImportError::DuplicateSystemTitle {
                    first: (*first.get()).clone(),
                    second: at.clone(),
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(at);
            }
        }
    }
    Ok(())
}

/// The two formats, by the names their fields have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sim,
    Deployment,
}

impl Dialect {
    fn host(self) -> &'static str {
        match self {
            Dialect::Sim => "address",
            Dialect::Deployment => "host",
        }
    }
    fn server_address(self) -> &'static str {
        match self {
            Dialect::Sim => "server_sap",
            Dialect::Deployment => "server_address",
        }
    }
    fn hls_utility(self) -> &'static str {
        match self {
            Dialect::Sim => "hls_secret_utility",
            Dialect::Deployment => "hls_utility",
        }
    }
    fn hls_firmware(self) -> &'static str {
        match self {
            Dialect::Sim => "hls_secret_firmware",
            Dialect::Deployment => "hls_firmware",
        }
    }
    fn required(self) -> [&'static str; 7] {
        [
            "serial",
            self.host(),
            "system_title",
            "global_encryption_key",
            "global_authentication_key",
            self.hls_utility(),
            self.hls_firmware(),
        ]
    }
}

/// Every field of `urja-meters/1`.
const DEPLOYMENT_FIELDS: [&str; 16] = [
    "serial",
    "kind",
    "host",
    "port",
    "transport",
    "physical_address",
    "server_address",
    "dcu",
    "group",
    "system_title",
    "global_encryption_key",
    "global_authentication_key",
    "master_key",
    "lls_secret",
    "hls_utility",
    "hls_firmware",
];

/// One field's raw value.
enum Cell<'a> {
    Absent,
    Text(&'a str),
    Number(&'a serde_json::Number),
    /// A JSON value of another type.
    Other,
}

/// The simulator's associations of one meter, by name.
struct Associations<'a>(HashMap<&'a str, &'a Map<String, Json>>);

/// The fields of one record, whatever the file's syntax.
enum Cells<'a> {
    Json {
        fields: &'a Map<String, Json>,
        associations: Option<Associations<'a>>,
    },
    Csv {
        columns: &'a HashMap<String, usize>,
        row: &'a csv::StringRecord,
    },
}

/// Where the simulator's JSON keeps the secrets that its CSV has in columns.
fn association_of(name: &str) -> Option<&'static str> {
    match name {
        "lls_secret" => Some("meter-reader"),
        "hls_secret_utility" => Some("utility-settings"),
        "hls_secret_firmware" => Some("firmware"),
        _ => None,
    }
}

fn json_cell(value: Option<&Json>) -> Cell<'_> {
    match value {
        None | Some(Json::Null) => Cell::Absent,
        Some(Json::String(s)) => Cell::Text(s),
        Some(Json::Number(n)) => Cell::Number(n),
        Some(_) => Cell::Other,
    }
}

impl<'a> Cells<'a> {
    fn get(&self, name: &str) -> Cell<'a> {
        match self {
            Cells::Json {
                fields,
                associations: Some(associations),
            } if association_of(name).is_some() => {
                let association = association_of(name).and_then(|a| associations.0.get(a));
                json_cell(association.and_then(|a| a.get("secret")))
            }
            Cells::Json { fields, .. } => json_cell(fields.get(name)),
            Cells::Csv { columns, row } => match columns.get(name).and_then(|&i| row.get(i)) {
                None | Some("") => Cell::Absent,
                Some(text) => Cell::Text(text),
            },
        }
    }

    /// The field's name as the user sees it in the file.
    fn label(&self, name: &str) -> String {
        match (self, association_of(name)) {
            (
                Cells::Json {
                    associations: Some(_),
                    ..
                },
                Some(association),
            ) => format!("associations[\"{association}\"].secret"),
            _ => name.to_owned(),
        }
    }
}

/// Reads the fields of one record, naming the record and the field in every error.
struct Reader<'a> {
    cells: Cells<'a>,
    at: RecordRef,
}

impl Reader<'_> {
    fn error(&self, name: &str, problem: FieldProblem) -> ImportError {
        ImportError::Field {
            record: self.at.clone(),
            field: self.cells.label(name),
            problem,
        }
    }

    /// A text field (a JSON number is taken as its decimal text), trimmed; `None` when absent.
    fn text(&self, name: &str) -> Result<Option<String>, ImportError> {
        match self.cells.get(name) {
            Cell::Absent => Ok(None),
            Cell::Text(s) if s.trim().is_empty() => Ok(None),
            Cell::Text(s) => Ok(Some(s.trim().to_owned())),
            Cell::Number(n) => Ok(Some(n.to_string())),
            Cell::Other => Err(self.error(name, FieldProblem::NotText)),
        }
    }

    /// A secret text field: strings only, so a key written as a number is refused.
    fn secret(&self, name: &str) -> Result<Option<&str>, ImportError> {
        match self.cells.get(name) {
            Cell::Absent => Ok(None),
            Cell::Text(s) if s.trim().is_empty() => Ok(None),
            Cell::Text(s) => Ok(Some(s.trim())),
            Cell::Number(_) | Cell::Other => Err(self.error(name, FieldProblem::NotText)),
        }
    }

    fn hex<const N: usize>(&self, name: &str) -> Result<Option<[u8; N]>, ImportError> {
        self.secret(name)?
            .map(|s| decode_hex::<N>(s).map_err(|p| self.error(name, FieldProblem::Hex(p))))
            .transpose()
    }

    fn required_hex<const N: usize>(&self, name: &str) -> Result<[u8; N], ImportError> {
        self.hex::<N>(name)?
            .ok_or_else(|| self.error(name, FieldProblem::Missing))
    }

    fn number(&self, name: &str, min: u16, max: u16) -> Result<Option<u16>, ImportError> {
        let value = match self.cells.get(name) {
            Cell::Absent => return Ok(None),
            Cell::Text(s) if s.trim().is_empty() => return Ok(None),
            Cell::Text(s) => s.trim().parse::<u64>().ok(),
            Cell::Number(n) => n.as_u64(),
            Cell::Other => None,
        };
        let value = value.ok_or_else(|| self.error(name, FieldProblem::NotNumber))?;
        u16::try_from(value)
            .ok()
            .filter(|v| (min..=max).contains(v))
            .map(Some)
            .ok_or_else(|| {
                self.error(
                    name,
                    FieldProblem::OutOfRange {
                        min: min.into(),
                        max: max.into(),
                    },
                )
            })
    }

    /// A short printable label (DCU, group): 1 to 64 printable ASCII characters.
    fn label_text(&self, name: &str) -> Result<Option<String>, ImportError> {
        match self.text(name)? {
            Some(s) if s.len() > 64 || !s.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) => {
                Err(self.error(
                    name,
                    FieldProblem::Invalid("at most 64 printable ASCII characters"),
                ))
            }
            other => Ok(other),
        }
    }
}

fn parse_kind(word: &str) -> Option<MeterKind> {
    match word.to_ascii_lowercase().replace('_', "-").as_str() {
        "single-phase" | "single-phase-whole-current" => Some(MeterKind::SinglePhaseWholeCurrent),
        "three-phase" | "three-phase-whole-current" => Some(MeterKind::ThreePhaseWholeCurrent),
        "three-phase-ct" | "three-phase-ct-operated" => Some(MeterKind::ThreePhaseCtOperated),
        _ => None,
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
}

/// Highest logical device and HDLC physical address (14 bits in a 4-byte HDLC address).
const MAX_ADDRESS: u16 = 0x3FFF;

fn parse_meter(dialect: Dialect, r: &mut Reader<'_>) -> Result<ImportedMeter, ImportError> {
    let serial = r
        .text("serial")?
        .ok_or_else(|| r.error("serial", FieldProblem::Missing))?;
    let serial =
        MeterSerial::new(serial).map_err(|e| r.error("serial", FieldProblem::Serial(e)))?;
    r.at.serial = Some(serial.clone());
    let r = &*r;

    let kind = match r.text("kind")? {
        None => MeterKind::SinglePhaseWholeCurrent,
        Some(word) => parse_kind(&word).ok_or_else(|| {
            r.error(
                "kind",
                FieldProblem::NotOneOf("single-phase, three-phase, three-phase-ct"),
            )
        })?,
    };
    let host_field = dialect.host();
    let host = r
        .text(host_field)?
        .ok_or_else(|| r.error(host_field, FieldProblem::Missing))?;
    if !valid_host(&host) {
        return Err(r.error(
            host_field,
            FieldProblem::Invalid("a host name or IP address"),
        ));
    }
    let port = r.number("port", 1, u16::MAX)?.unwrap_or(DEFAULT_PORT);
    let server_address = r
        .number(dialect.server_address(), 1, MAX_ADDRESS)?
        .unwrap_or(DEFAULT_SERVER_ADDRESS);
    let physical_address = r.number("physical_address", 0, MAX_ADDRESS)?;
    let transport = match r
        .text("transport")?
        .map(|t| t.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("wrapper") => {
            if physical_address.is_some() && dialect == Dialect::Deployment {
                return Err(r.error(
                    "physical_address",
                    FieldProblem::Invalid("no physical address with the TCP wrapper"),
                ));
            }
            Transport::Wrapper
        }
        Some("hdlc") => Transport::Hdlc {
            // The simulator answers any physical address; a real HDLC meter needs its own.
            physical_address: match (physical_address, dialect) {
                (Some(a), _) => a,
                (None, Dialect::Sim) => 0,
                (None, Dialect::Deployment) => {
                    return Err(r.error("physical_address", FieldProblem::Missing));
                }
            },
        },
        Some(_) => {
            return Err(r.error("transport", FieldProblem::NotOneOf("wrapper, hdlc")));
        }
    };
    let dcu = r.label_text("dcu")?;
    let group = r
        .label_text("group")?
        .unwrap_or_else(|| DEFAULT_GROUP.to_owned());

    if let Cells::Json {
        associations: Some(associations),
        ..
    } = &r.cells
    {
        for name in ["utility-settings", "firmware"] {
            let mechanism = associations.0.get(name).and_then(|a| a.get("mechanism"));
            if mechanism.is_some_and(|m| m != "hls") {
                return Err(ImportError::Field {
                    record: r.at.clone(),
                    field: format!("associations[\"{name}\"].mechanism"),
                    problem: FieldProblem::NotOneOf("hls (the head-end uses HLS mechanism 2)"),
                });
            }
        }
    }
    let lls_secret = match r.secret("lls_secret")? {
        None => Vec::new(),
        Some(s) if s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic()) => s.into(),
        Some(_) => {
            return Err(r.error(
                "lls_secret",
                FieldProblem::Invalid("at most 64 printable ASCII characters without spaces"),
            ));
        }
    };
    let credentials = MeterCredentials {
        system_title: r.required_hex::<8>("system_title")?,
        global_keys: GlobalKeys {
            encryption: r.required_hex::<16>("global_encryption_key")?,
            authentication: r.required_hex::<16>("global_authentication_key")?,
        },
        lls_secret,
        hls_utility: r.required_hex::<16>(dialect.hls_utility())?,
        hls_firmware: r.required_hex::<16>(dialect.hls_firmware())?,
        master_key: r.hex::<16>("master_key")?,
    };
    Ok(ImportedMeter {
        serial,
        kind,
        host,
        port,
        transport,
        server_address,
        dcu,
        group,
        credentials,
    })
}

fn parse_json(bytes: &[u8]) -> Result<Vec<(ImportedMeter, RecordRef)>, ImportError> {
    let document: Json = serde_json::from_slice(bytes).map_err(|e| ImportError::Json {
        problem: match e.classify() {
            serde_json::error::Category::Eof => "unexpected end of file",
            _ => "syntax error",
        },
        line: e.line(),
        column: e.column(),
    })?;
    let top = document
        .as_object()
        .ok_or_else(|| ImportError::Shape("a JSON key file is an object".into()))?;
    let dialect = match top.get("format").and_then(Json::as_str) {
        Some(SIM_FORMAT) => Dialect::Sim,
        Some(DEPLOYMENT_FORMAT) => Dialect::Deployment,
        _ => return Err(ImportError::UnknownFormat),
    };
    let list = top
        .get("meters")
        .and_then(Json::as_array)
        .ok_or_else(|| ImportError::Shape("a JSON key file has a \"meters\" list".into()))?;
    let mut meters = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let at = RecordRef {
            number: i + 1,
            serial: None,
            line: None,
        };
        let Some(fields) = entry.as_object() else {
            return Err(ImportError::Record {
                record: at,
                problem: "not a JSON object",
            });
        };
        let associations = match dialect {
            Dialect::Deployment => {
                if let Some(unknown) = fields
                    .keys()
                    .find(|k| !DEPLOYMENT_FIELDS.contains(&k.as_str()))
                {
                    let serial = fields.get("serial").and_then(Json::as_str);
                    return Err(ImportError::Field {
                        record: RecordRef {
                            serial: serial.and_then(|s| MeterSerial::new(s.trim()).ok()),
                            ..at
                        },
                        field: unknown.clone(),
                        problem: FieldProblem::Unknown,
                    });
                }
                None
            }
            Dialect::Sim => Some(sim_associations(fields, &at)?),
        };
        let mut reader = Reader {
            cells: Cells::Json {
                fields,
                associations,
            },
            at,
        };
        let meter = parse_meter(dialect, &mut reader)?;
        meters.push((meter, reader.at));
    }
    Ok(meters)
}

fn sim_associations<'a>(
    fields: &'a Map<String, Json>,
    at: &RecordRef,
) -> Result<Associations<'a>, ImportError> {
    let field_error = |problem| ImportError::Field {
        record: at.clone(),
        field: "associations".into(),
        problem,
    };
    let list = match fields.get("associations") {
        None | Some(Json::Null) => return Err(field_error(FieldProblem::Missing)),
        Some(Json::Array(list)) => list,
        Some(_) => return Err(field_error(FieldProblem::Invalid("a list"))),
    };
    let mut by_name = HashMap::new();
    for association in list {
        let named = association
            .as_object()
            .and_then(|a| Some((a.get("name")?.as_str()?, a)));
        let Some((name, association)) = named else {
            return Err(field_error(FieldProblem::Invalid(
                "a list of objects with a \"name\"",
            )));
        };
        if by_name.insert(name, association).is_some() {
            return Err(field_error(FieldProblem::Invalid(
                "each association named once",
            )));
        }
    }
    Ok(Associations(by_name))
}

fn csv_error(e: &csv::Error) -> ImportError {
    let line = e.position().map(|p| p.line());
    let what = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_owned(),
        _ => "unreadable".to_owned(),
    };
    ImportError::Csv(match line {
        Some(line) => format!("line {line}: {what}"),
        None => what,
    })
}

fn parse_csv(bytes: &[u8]) -> Result<Vec<(ImportedMeter, RecordRef)>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .flexible(false)
        .from_reader(bytes);
    let header = reader.headers().map_err(|e| csv_error(&e))?.clone();
    let mut columns = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        if name.is_empty() {
            return Err(ImportError::Header(format!("column {} has no name", i + 1)));
        }
        if columns.insert(name.clone(), i).is_some() {
            return Err(ImportError::Header(format!(
                "column \"{name}\" appears twice"
            )));
        }
    }
    let dialect = if columns.contains_key("hls_secret_utility") {
        Dialect::Sim
    } else {
        Dialect::Deployment
    };
    if dialect == Dialect::Deployment
        && let Some(unknown) = header
            .iter()
            .find(|c| !DEPLOYMENT_FIELDS.contains(&c.to_ascii_lowercase().as_str()))
    {
        return Err(ImportError::Header(format!(
            "column \"{unknown}\" is not a field of {DEPLOYMENT_FORMAT}"
        )));
    }
    if let Some(missing) = dialect
        .required()
        .into_iter()
        .find(|c| !columns.contains_key(*c))
    {
        return Err(ImportError::Header(format!("no \"{missing}\" column")));
    }
    let mut meters = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| csv_error(&e))?;
        let mut reader = Reader {
            cells: Cells::Csv {
                columns: &columns,
                row: &row,
            },
            at: RecordRef {
                number: i + 1,
                serial: None,
                line: row.position().map(|p| p.line()),
            },
        };
        let meter = parse_meter(dialect, &mut reader)?;
        meters.push((meter, reader.at));
    }
    Ok(meters)
}
