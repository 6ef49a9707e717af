//! The key store as the head-end uses it: importing the simulator's key file and the documented
//! deployment format, sealing credentials at rest, and finding the master key.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use dlms::security::GlobalKeys;
use hes::keystore::import::{FieldProblem, ImportError};
use hes::keystore::{
    FileFormat, KeyStoreError, MASTER_KEY_ENV, MasterKey, MasterKeySource, open, parse_key_file,
    seal,
};
use hes::{MeterCredentials, Transport};
use meter_sim::MeterKeys;
use meter_sim::keys::{Endpoint, hex, write_key_file};
use model::{MeterKind, MeterSerial};
use serde_json::{Value, json};

const SEED: u64 = 0x5EED_0015;

fn endpoint(i: u32) -> Endpoint {
    Endpoint {
        address: Ipv4Addr::new(127, 1, 0, 1 + i as u8),
        port: 4059 + i as u16,
        transport: if i == 2 {
            meter_sim::Transport::Hdlc
        } else {
            meter_sim::Transport::Wrapper
        },
    }
}

fn sim_key_file(name: &str, meters: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    write_key_file(&path, SEED, (0..meters).map(|i| (i, endpoint(i)))).unwrap();
    (dir, path)
}

fn assert_matches_simulator(imported: &[hes::keystore::ImportedMeter], meters: u32) {
    assert_eq!(imported.len(), meters as usize);
    for (i, meter) in (0..meters).zip(imported) {
        let keys = MeterKeys::derive(SEED, i);
        assert_eq!(meter.serial.as_str(), keys.serial);
        assert_eq!(meter.kind, MeterKind::SinglePhaseWholeCurrent);
        assert_eq!(meter.host, endpoint(i).address.to_string());
        assert_eq!(meter.port, endpoint(i).port);
        let transport = match endpoint(i).transport {
            meter_sim::Transport::Wrapper => Transport::Wrapper,
            meter_sim::Transport::Hdlc => Transport::Hdlc {
                physical_address: 0,
            },
        };
        assert_eq!(meter.transport, transport);
        assert_eq!(meter.server_address, meter_sim::keys::SERVER_SAP);
        assert_eq!(meter.dcu, None);
        assert_eq!(meter.group, "default");
        let expected = MeterCredentials {
            system_title: keys.system_title,
            global_keys: GlobalKeys {
                encryption: keys.global_encryption_key,
                authentication: keys.global_authentication_key,
            },
            lls_secret: keys.lls_secret.as_bytes().to_vec(),
            hls_utility: keys.hls_utility,
            hls_firmware: keys.hls_firmware,
            master_key: Some(keys.master_key),
        };
        assert_eq!(meter.credentials, expected, "meter {i}");
    }
}

#[test]
fn the_simulators_json_key_file_imports_with_the_derived_keys() {
    let (_dir, path) = sim_key_file("keys.json", 4);
    let bytes = std::fs::read(&path).unwrap();
    assert_matches_simulator(&parse_key_file(&bytes, FileFormat::Auto).unwrap(), 4);
    assert_matches_simulator(&parse_key_file(&bytes, FileFormat::Json).unwrap(), 4);
}

#[test]
fn the_simulators_csv_key_file_imports_with_the_derived_keys() {
    let (_dir, path) = sim_key_file("keys.csv", 4);
    let bytes = std::fs::read(&path).unwrap();
    assert_matches_simulator(&parse_key_file(&bytes, FileFormat::Auto).unwrap(), 4);
    assert_matches_simulator(&parse_key_file(&bytes, FileFormat::Csv).unwrap(), 4);
}

#[test]
fn a_simulator_file_without_master_keys_imports_without_them() {
    let (_dir, path) = sim_key_file("keys.json", 2);
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for meter in doc["meters"].as_array_mut().unwrap() {
        meter.as_object_mut().unwrap().remove("master_key");
    }
    let json = serde_json::to_vec(&doc).unwrap();
    let meters = parse_key_file(&json, FileFormat::Auto).unwrap();
    assert!(meters.iter().all(|m| m.credentials.master_key.is_none()));

    let (_dir, path) = sim_key_file("keys.csv", 2);
    let text = std::fs::read_to_string(&path).unwrap();
    // Drop the last column: the CSV as simulators wrote it before master keys.
    let old: String = text
        .lines()
        .map(|l| format!("{}\n", l.rsplit_once(',').unwrap().0))
        .collect();
    assert!(!old.contains("master_key"));
    let meters = parse_key_file(old.as_bytes(), FileFormat::Auto).unwrap();
    assert_eq!(meters.len(), 2);
    assert!(meters.iter().all(|m| m.credentials.master_key.is_none()));
    assert_eq!(
        meters[1].credentials.hls_firmware,
        MeterKeys::derive(SEED, 1).hls_firmware
    );
}

/// The example of `docs/key-import.md` that follows the marker `<!-- example: {name} -->`.
fn doc_example(name: &str) -> String {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/key-import.md");
    let text = std::fs::read_to_string(doc).unwrap();
    let marker = format!("<!-- example: {name} -->");
    let after = &text[text.find(&marker).expect("example marker") + marker.len()..];
    let fence = after.find("```").expect("opening fence");
    let body = &after[fence..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").expect("closing fence")].to_owned()
}

#[test]
fn the_documented_deployment_examples_import() {
    let json = parse_key_file(
        doc_example("urja-meters/1 json").as_bytes(),
        FileFormat::Auto,
    )
    .unwrap();
    let csv = parse_key_file(
        doc_example("urja-meters/1 csv").as_bytes(),
        FileFormat::Auto,
    )
    .unwrap();
    assert_eq!(json, csv, "the two examples describe the same meters");
    assert_eq!(json.len(), 2);

    let first = &json[0];
    assert_eq!(first.serial.as_str(), "ABC00012345");
    assert_eq!(first.kind, MeterKind::SinglePhaseWholeCurrent);
    assert_eq!(first.host, "10.20.0.15");
    assert_eq!(first.port, 4059, "default port");
    assert_eq!(first.transport, Transport::Wrapper, "default transport");
    assert_eq!(first.server_address, 1, "default server address");
    assert_eq!(first.dcu, None);
    assert_eq!(first.group, "default");
    assert_eq!(first.credentials.system_title, *b"ABC\x00\x00\x00\x30\x39");
    assert_eq!(
        first.credentials.global_keys.encryption,
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    );
    assert_eq!(first.credentials.global_keys.authentication[0], 0xD0);
    assert_eq!(first.credentials.master_key.unwrap()[0], 0xF0);
    assert!(first.credentials.lls_secret.is_empty());
    assert_eq!(first.credentials.hls_utility[..4], [0x11; 4]);
    assert_eq!(first.credentials.hls_firmware[12..], [0x88; 4]);

    let second = &json[1];
    assert_eq!(second.kind, MeterKind::ThreePhaseCtOperated);
    assert_eq!(second.host, "dcu-07.feeder-12.example.net");
    assert_eq!(second.port, 4063);
    assert_eq!(
        second.transport,
        Transport::Hdlc {
            physical_address: 42
        }
    );
    assert_eq!(second.dcu.as_deref(), Some("DCU-07"));
    assert_eq!(second.group, "feeder-12");
    assert_eq!(second.credentials.master_key, None);
    assert_eq!(second.credentials.lls_secret, b"Reader#2024");
}

/// A valid deployment-format meter with distinctive secrets.
fn deployment_meter(serial: &str, title: &str) -> Value {
    json!({
        "serial": serial,
        "host": "10.0.0.1",
        "system_title": title,
        "global_encryption_key": "A1A2A3A4A5A6A7A8A9AAABACADAEAF00",
        "global_authentication_key": "B1B2B3B4B5B6B7B8B9BABBBCBDBEBF00",
        "master_key": "C1C2C3C4C5C6C7C8C9CACBCCCDCECF00",
        "lls_secret": "S3cretPassw0rd",
        "hls_utility": "D1D2D3D4D5D6D7D8D9DADBDCDDDEDF00",
        "hls_firmware": "E1E2E3E4E5E6E7E8E9EAEBECEDEEEF00",
    })
}

fn deployment_file(meters: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({"format": "urja-meters/1", "meters": meters})).unwrap()
}

/// Every secret (and its fragments) that the error must not show.
fn assert_no_secret(err: &ImportError, secrets: &[&str]) {
    for text in [err.to_string(), format!("{err:?}")] {
        for secret in secrets {
            assert!(
                !text.contains(secret) && !text.contains(&secret[..secret.len() / 2]),
                "error shows a secret: {text}"
            );
        }
    }
}

const SECRETS: [&str; 6] = [
    "A1A2A3A4A5A6A7A8A9AAABACADAEAF",
    "B1B2B3B4B5B6B7B8B9BABBBCBDBEBF",
    "C1C2C3C4C5C6C7C8C9CACBCCCDCECF",
    "S3cretPassw0rd",
    "D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",
    "E1E2E3E4E5E6E7E8E9EAEBECEDEEEF",
];

fn error_with(field: &str, value: Value) -> ImportError {
    let mut bad = deployment_meter("URJ10000017", "55524A0000989691");
    if value.is_null() {
        bad.as_object_mut().unwrap().remove(field);
    } else {
        bad[field] = value;
    }
    let meters = vec![
        deployment_meter("URJ10000001", "55524A0000989681"),
        deployment_meter("URJ10000002", "55524A0000989682"),
        bad,
    ];
    let err = parse_key_file(&deployment_file(meters), FileFormat::Json).unwrap_err();
    assert_no_secret(&err, &SECRETS);
    err
}

#[test]
fn field_errors_name_the_meter_and_field_and_never_the_value() {
    let short = "A1A2A3A4A5A6A7A8A9AAABACADAEAF0";
    assert_eq!(
        error_with("global_encryption_key", short.into()).to_string(),
        "meter 3 (URJ10000017): global_encryption_key: expected 32 hex digits, found 31 characters"
    );
    assert_eq!(
        error_with("hls_utility", "D1D2D3D4D5D6D7D8D9DADBDCDDDEDFZ0".into()).to_string(),
        "meter 3 (URJ10000017): hls_utility: expected 32 hex digits, character 31 is not a hex \
         digit"
    );
    assert_eq!(
        error_with("hls_firmware", Value::Null).to_string(),
        "meter 3 (URJ10000017): hls_firmware: missing"
    );
    assert_eq!(
        error_with("lls_secret", "S3cretPassw0rd with spaces".into()).to_string(),
        "meter 3 (URJ10000017): lls_secret: expected at most 64 printable ASCII characters \
         without spaces"
    );
    assert!(matches!(
        error_with("master_key", json!(12345678)),
        ImportError::Field {
            problem: FieldProblem::NotText,
            ..
        }
    ));
    assert_eq!(
        error_with("port", json!(70000)).to_string(),
        "meter 3 (URJ10000017): port: expected a whole number from 1 to 65535"
    );
    assert_eq!(
        error_with("transport", "hdlc".into()).to_string(),
        "meter 3 (URJ10000017): physical_address: missing"
    );
    assert_eq!(
        error_with("transport", "udp".into()).to_string(),
        "meter 3 (URJ10000017): transport: expected one of wrapper, hdlc"
    );
    assert_eq!(
        error_with("kind", "two-phase".into()).to_string(),
        "meter 3 (URJ10000017): kind: expected one of single-phase, three-phase, three-phase-ct"
    );
    // A misspelt optional field is refused rather than silently dropping the master key.
    assert_eq!(
        error_with("master_kye", "C1C2C3C4C5C6C7C8C9CACBCCCDCECF00".into()).to_string(),
        "meter 3 (URJ10000017): master_kye: not a field of urja-meters/1"
    );
    // Before the serial is known, the record is named by its position.
    assert_eq!(
        error_with("serial", "".into()).to_string(),
        "meter 3: serial: missing"
    );
}

#[test]
fn duplicates_and_empty_files_import_nothing() {
    let dup = deployment_file(vec![
        deployment_meter("URJ10000001", "55524A0000989681"),
        deployment_meter("URJ10000002", "55524A0000989682"),
        deployment_meter("URJ10000001", "55524A0000989683"),
    ]);
    let err = parse_key_file(&dup, FileFormat::Auto).unwrap_err();
    assert_eq!(
        err.to_string(),
        "meter URJ10000001 appears twice: meter 1 (URJ10000001) and meter 3 (URJ10000001)"
    );
    let same_title = deployment_file(vec![
        deployment_meter("URJ10000001", "55524A0000989681"),
        deployment_meter("URJ10000002", "55524a0000989681"),
    ]);
    assert!(matches!(
        parse_key_file(&same_title, FileFormat::Auto),
        Err(ImportError::DuplicateSystemTitle { .. })
    ));
    assert_eq!(
        parse_key_file(&deployment_file(vec![]), FileFormat::Auto),
        Err(ImportError::NoMeters)
    );
    assert_eq!(
        parse_key_file(
            br#"{"format": "urja-keys/9", "meters": []}"#,
            FileFormat::Auto
        ),
        Err(ImportError::UnknownFormat)
    );
}

#[test]
fn malformed_json_is_refused_without_showing_its_content() {
    let mut file = deployment_file(vec![deployment_meter("URJ10000001", "55524A0000989681")]);
    file.truncate(file.len() - 40);
    let err = parse_key_file(&file, FileFormat::Auto).unwrap_err();
    assert!(matches!(err, ImportError::Json { .. }), "{err}");
    assert_no_secret(&err, &SECRETS);

    let mut broken = String::from_utf8(deployment_file(vec![deployment_meter(
        "URJ10000001",
        "55524A0000989681",
    )]))
    .unwrap();
    broken = broken.replace("\"S3cretPassw0rd\"", "S3cretPassw0rd");
    let err = parse_key_file(broken.as_bytes(), FileFormat::Json).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("not valid JSON: syntax error at line"),
        "{err}"
    );
    assert_no_secret(&err, &SECRETS);
}

const CSV_HEADER: &str = "serial,host,system_title,global_encryption_key,\
    global_authentication_key,master_key,lls_secret,hls_utility,hls_firmware";

fn csv_row(serial: &str, title: &str) -> String {
    format!(
        "{serial},10.0.0.1,{title},A1A2A3A4A5A6A7A8A9AAABACADAEAF00,\
         B1B2B3B4B5B6B7B8B9BABBBCBDBEBF00,C1C2C3C4C5C6C7C8C9CACBCCCDCECF00,S3cretPassw0rd,\
         D1D2D3D4D5D6D7D8D9DADBDCDDDEDF00,E1E2E3E4E5E6E7E8E9EAEBECEDEEEF00"
    )
}

#[test]
fn csv_errors_name_the_line_and_never_the_value() {
    let good = format!(
        "{CSV_HEADER}\n{}\n{}\n",
        csv_row("URJ10000001", "55524A0000989681"),
        csv_row("URJ10000002", "55524A0000989682")
    );
    assert_eq!(
        parse_key_file(good.as_bytes(), FileFormat::Auto)
            .unwrap()
            .len(),
        2
    );
    // As a spreadsheet saves it: byte order mark, CRLF line ends.
    let saved = format!("\u{FEFF}{}", good.replace('\n', "\r\n"));
    assert_eq!(
        parse_key_file(saved.as_bytes(), FileFormat::Auto).unwrap(),
        parse_key_file(good.as_bytes(), FileFormat::Auto).unwrap()
    );

    let bad_key = good.replacen("B1B2B3B4B5B6B7B8B9BABBBCBDBEBF00", "B1B2B3B4", 2);
    let err = parse_key_file(bad_key.as_bytes(), FileFormat::Auto).unwrap_err();
    assert_eq!(
        err.to_string(),
        "meter 1 (URJ10000001, line 2): global_authentication_key: expected 32 hex digits, \
         found 8 characters"
    );
    assert_no_secret(&err, &SECRETS);

    let short_row = format!("{good}URJ10000003,10.0.0.3,S3cretPassw0rd\n");
    let err = parse_key_file(short_row.as_bytes(), FileFormat::Auto).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not valid CSV: line 4: 3 fields where the header has 9"
    );
    assert_no_secret(&err, &SECRETS);

    let no_column = good.replacen(",hls_firmware", ",hls_firmwre", 1);
    assert_eq!(
        parse_key_file(no_column.as_bytes(), FileFormat::Auto)
            .unwrap_err()
            .to_string(),
        "CSV header: column \"hls_firmwre\" is not a field of urja-meters/1"
    );
    let missing = format!(
        "serial,host\n{}\n",
        "URJ10000001,10.0.0.1" // no keys at all
    );
    assert_eq!(
        parse_key_file(missing.as_bytes(), FileFormat::Auto)
            .unwrap_err()
            .to_string(),
        "CSV header: no \"system_title\" column"
    );
    assert_eq!(
        parse_key_file(format!("{CSV_HEADER}\n").as_bytes(), FileFormat::Auto),
        Err(ImportError::NoMeters)
    );
}

#[test]
fn simulator_associations_must_use_hls_mechanism_2() {
    let (_dir, path) = sim_key_file("keys.json", 1);
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let secret = doc["meters"][0]["associations"][4]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    doc["meters"][0]["associations"][4]["mechanism"] = "hls-gmac".into();
    let err = parse_key_file(&serde_json::to_vec(&doc).unwrap(), FileFormat::Auto).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("meter 1 (URJ10000001): associations[\"firmware\"].mechanism"),
        "{err}"
    );
    assert!(!err.to_string().contains(&secret));

    doc["meters"][0]["associations"][4]["mechanism"] = "hls".into();
    doc["meters"][0]["associations"][4]["secret"] = "0011".into();
    let err = parse_key_file(&serde_json::to_vec(&doc).unwrap(), FileFormat::Auto).unwrap_err();
    assert_eq!(
        err.to_string(),
        "meter 1 (URJ10000001): associations[\"firmware\"].secret: expected 32 hex digits, \
         found 4 characters"
    );
}

// ---- sealing ----

fn credentials() -> MeterCredentials {
    let keys = MeterKeys::derive(SEED, 7);
    MeterCredentials {
        system_title: keys.system_title,
        global_keys: GlobalKeys {
            encryption: keys.global_encryption_key,
            authentication: keys.global_authentication_key,
        },
        lls_secret: keys.lls_secret.into_bytes(),
        hls_utility: keys.hls_utility,
        hls_firmware: keys.hls_firmware,
        master_key: Some(keys.master_key),
    }
}

fn serial(s: &str) -> MeterSerial {
    MeterSerial::new(s).unwrap()
}

#[test]
fn sealed_credentials_open_with_the_same_key_meter_and_version() {
    let master = MasterKey::from_bytes([0x42; 32]);
    let meter = serial("URJ10000008");
    let c = credentials();
    let blob = seal(&master, &meter, 3, &c).unwrap();
    assert!(
        !blob
            .windows(16)
            .any(|w| w == c.global_keys.encryption || w == c.hls_utility),
        "the blob holds a key in clear"
    );
    assert_eq!(open(&master, &meter, 3, &blob).unwrap(), c);

    let without = MeterCredentials {
        master_key: None,
        lls_secret: Vec::new(),
        ..c
    };
    let blob = seal(&master, &meter, 0, &without).unwrap();
    assert_eq!(open(&master, &meter, 0, &blob).unwrap(), without);
}

fn assert_unseal(result: Result<MeterCredentials, KeyStoreError>, meter: &str) {
    match result {
        Err(e @ KeyStoreError::Unseal { .. }) => {
            let text = e.to_string();
            assert!(text.contains(meter), "{text}");
            assert!(!text.contains(&hex(&credentials().hls_utility)), "{text}");
        }
        other => panic!("expected Unseal, got {other:?}"),
    }
}

#[test]
fn sealed_credentials_refuse_the_wrong_key_meter_or_version() {
    let master = MasterKey::from_bytes([0x42; 32]);
    let meter = serial("URJ10000008");
    let blob = seal(&master, &meter, 3, &credentials()).unwrap();
    let other_key = MasterKey::from_bytes([0x43; 32]);
    assert_unseal(open(&other_key, &meter, 3, &blob), "URJ10000008");
    assert_unseal(
        open(&master, &serial("URJ10000009"), 3, &blob),
        "URJ10000009",
    );
    assert_unseal(open(&master, &meter, 2, &blob), "URJ10000008");
    assert_unseal(open(&master, &meter, 4, &blob), "URJ10000008");
}

#[test]
fn altered_or_truncated_blobs_do_not_open() {
    let master = MasterKey::from_bytes([0x42; 32]);
    let meter = serial("URJ10000008");
    let blob = seal(&master, &meter, 1, &credentials()).unwrap();
    for i in 0..blob.len() {
        let mut flipped = blob.clone();
        flipped[i] ^= 0x01;
        assert_unseal(open(&master, &meter, 1, &flipped), "URJ10000008");
    }
    for len in 0..blob.len() {
        assert_unseal(open(&master, &meter, 1, &blob[..len]), "URJ10000008");
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert_unseal(open(&master, &meter, 1, &longer), "URJ10000008");
}

// ---- the master key ----

const KEY_HEX: &str = "00112233445566778899aabbccddeeff0123456789ABCDEF0011223344556677";

fn key_of(hex_text: &str) -> MasterKey {
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex_text[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    MasterKey::from_bytes(bytes.try_into().unwrap())
}

#[test]
fn the_environment_key_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let (key, source) =
        MasterKey::load_with(Some(OsStr::new(&format!(" {KEY_HEX}\n"))), dir.path()).unwrap();
    assert_eq!(source, MasterKeySource::Environment);
    assert_eq!(key.fingerprint(), key_of(KEY_HEX).fingerprint());
    assert!(
        !dir.path().join("master.key").exists(),
        "nothing is written when the key comes from the environment"
    );
}

#[test]
fn a_malformed_environment_key_is_named_but_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    for (value, problem) in [
        (KEY_HEX[..62].to_owned(), "found 62 characters"),
        (KEY_HEX.replace('f', "g"), "character 31 is not a hex digit"),
        (String::new(), "empty"),
    ] {
        let err = MasterKey::load_with(Some(OsStr::new(&value)), dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(MASTER_KEY_ENV), "{text}");
        assert!(text.contains(problem), "{text}");
        assert!(text.contains("64 hex digits"), "{text}");
        if value.len() > 8 {
            assert!(!text.contains(&value[..8]), "{text}");
        }
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_key_is_generated_once_owner_only_and_then_read_back() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let (generated, source) = MasterKey::load_with(None, &dir).unwrap();
    let path = dir.join("master.key");
    assert_eq!(source, MasterKeySource::Generated { path: path.clone() });
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file is left behind"
    );

    let (again, source) = MasterKey::load_with(None, &dir).unwrap();
    assert_eq!(source, MasterKeySource::File { path });
    assert_eq!(again.fingerprint(), generated.fingerprint());
    assert!(
        again
            .verify_fingerprint(Some(&generated.fingerprint()))
            .is_ok()
    );

    let other = tempfile::tempdir().unwrap();
    let (fresh, _) = MasterKey::load_with(None, other.path()).unwrap();
    assert_ne!(fresh.fingerprint(), generated.fingerprint());
    assert!(matches!(
        fresh.verify_fingerprint(Some(&generated.fingerprint())),
        Err(KeyStoreError::WrongMasterKey { .. })
    ));
}

#[test]
fn a_key_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    std::fs::write(&path, format!("{KEY_HEX}\n")).unwrap();
    #[cfg(unix)]
    set_mode(&path, 0o600);
    let (key, source) = MasterKey::load_with(None, dir.path()).unwrap();
    assert_eq!(source, MasterKeySource::File { path });
    assert_eq!(key.fingerprint(), key_of(KEY_HEX).fingerprint());
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    std::fs::write(&path, format!("{KEY_HEX}\n")).unwrap();
    for loose in [0o644, 0o640, 0o604, 0o660] {
        set_mode(&path, loose);
        let err = MasterKey::load_with(None, dir.path()).unwrap_err();
        assert!(
            matches!(err, KeyStoreError::LoosePermissions { mode, .. } if mode == loose),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", path.display())),
            "{text}"
        );
        assert!(!text.contains(&KEY_HEX[..8]), "{text}");
    }
    // The refused file is left alone: nothing is generated over it.
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), KEY_HEX);
}

#[test]
fn a_key_file_of_the_wrong_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    std::fs::write(&path, &KEY_HEX[..32]).unwrap();
    #[cfg(unix)]
    set_mode(&path, 0o600);
    let err = MasterKey::load_with(None, dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            KeyStoreError::MasterKeyFile {
                problem: hes::keystore::HexProblem::Length {
                    expected: 64,
                    found: 32
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains(&KEY_HEX[..8]), "{err}");
}

/// `MasterKey::load` reads the real environment variable; setting it needs a process of its own.
#[test]
fn load_reads_urja_master_key_from_the_process_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_loads_the_master_key_from_the_environment",
            "--ignored",
            "--test-threads=1",
        ])
        .env(MASTER_KEY_ENV, KEY_HEX)
        .env("URJA_KEYSTORE_TEST_DIR", dir.path())
        .env(
            "URJA_KEYSTORE_TEST_FINGERPRINT",
            key_of(KEY_HEX).fingerprint(),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run in a child process by load_reads_urja_master_key_from_the_process_environment"]
fn child_loads_the_master_key_from_the_environment() {
    let dir = PathBuf::from(std::env::var_os("URJA_KEYSTORE_TEST_DIR").unwrap());
    let (key, source) = MasterKey::load(&dir).unwrap();
    assert_eq!(source, MasterKeySource::Environment);
    assert_eq!(
        key.fingerprint(),
        std::env::var("URJA_KEYSTORE_TEST_FINGERPRINT").unwrap()
    );
}

proptest::proptest! {
    #[test]
    fn any_bytes_are_refused_or_parsed_without_panicking(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
    ) {
        for hint in [FileFormat::Auto, FileFormat::Json, FileFormat::Csv] {
            let _ = parse_key_file(&bytes, hint);
        }
        let master = MasterKey::from_bytes([1; 32]);
        proptest::prop_assert!(open(&master, &serial("M1"), 0, &bytes).is_err());
    }

    #[test]
    fn damaged_key_files_are_refused_or_parsed_without_panicking(
        at in 0usize..4000,
        byte in proptest::num::u8::ANY,
        cut in 0usize..4000,
    ) {
        let json = doc_example("urja-meters/1 json").into_bytes();
        let csv = doc_example("urja-meters/1 csv").into_bytes();
        for mut file in [json, csv] {
            let len = file.len();
            if let Some(b) = file.get_mut(at % len) {
                *b = byte;
            }
            let cut = cut % (len + 1);
            let _ = parse_key_file(&file, FileFormat::Auto);
            let _ = parse_key_file(&file[..cut], FileFormat::Auto);
        }
    }
}
