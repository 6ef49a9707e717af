//! Per-meter identity and secrets, derived on demand from (seed, meter index) so nothing is stored
//! per meter, and the key file (`--keys-out`, format `urja-sim-keys/1`, JSON or CSV) that hands
//! them to the head-end and to test clients. Secrets never appear in `Debug` output or logs.
//!
//! The key file holds, per meter: serial, kind, address, port, transport, server SAP, system
//! title, the global encryption and authentication keys, the master key (KEK, `master_key`: the
//! last CSV column) and the secret of each association. The global keys are those the meter
//! starts with; a head-end that rotates them by key transfer must keep the new ones itself.
//!
//! The keys are a deterministic function of the seed, by design: the same seed gives the same
//! fleet, so a test or a head-end can be pointed at it again. The seed is therefore as secret as
//! every key of the fleet; this is a simulator, not a key generator, and its keys must never
//! protect a real meter. The key file is created readable by its owner only (0600 on unix).

use std::fmt;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Serialize;

use crate::fleet::Transport;
use crate::hash::{hash, tag};

/// The serial number of meter `index` (zero-based): `URJ10000001` for the first.
pub fn serial(index: u32) -> String {
    format!("URJ{}", 10_000_001u64 + index as u64)
}

/// Everything secret (and the identity) of one meter.
#[derive(Clone, PartialEq, Eq)]
pub struct MeterKeys {
    pub serial: String,
    /// 8 bytes: manufacturer code "URJ" then the meter number (5 bytes, big-endian).
    pub system_title: [u8; 8],
    pub global_encryption_key: [u8; 16],
    pub global_authentication_key: [u8; 16],
    /// Meter reader (client SAP 32) LLS password: 16 printable ASCII characters.
    pub lls_secret: String,
    /// HLS secrets for utility settings (48), push (64) and firmware (80).
    pub hls_utility: [u8; 16],
    pub hls_push: [u8; 16],
    pub hls_firmware: [u8; 16],
    /// Master key (KEK): wraps new global keys sent by key transfer (security setup method 2).
    pub master_key: [u8; 16],
}

impl fmt::Debug for MeterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeterKeys")
            .field("serial", &self.serial)
            .field("system_title", &hex(&self.system_title))
            .field("secrets", &"<redacted>")
            .finish()
    }
}

fn key16(seed: u64, what: u64, meter: u32) -> [u8; 16] {
    let a = hash(seed, &[what, meter as u64, 0]).to_be_bytes();
    let b = hash(seed, &[what, meter as u64, 1]).to_be_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a);
    out[8..].copy_from_slice(&b);
    out
}

impl MeterKeys {
    /// Derives the keys of meter `index` of the fleet with this seed.
    pub fn derive(seed: u64, index: u32) -> Self {
        let number = 10_000_001u64 + index as u64;
        let mut system_title = [0u8; 8];
        system_title[..3].copy_from_slice(b"URJ");
        system_title[3..].copy_from_slice(&number.to_be_bytes()[3..]);
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let lls_secret = (0..16u64)
            .map(|i| {
                let h = hash(seed, &[tag::KEY_LLS, index as u64, i]);
                ALPHABET[(h % ALPHABET.len() as u64) as usize] as char
            })
            .collect();
        MeterKeys {
            serial: serial(index),
            system_title,
            global_encryption_key: key16(seed, tag::KEY_EK, index),
            global_authentication_key: key16(seed, tag::KEY_AK, index),
            lls_secret,
            hls_utility: key16(seed, tag::KEY_HLS_US, index),
            hls_push: key16(seed, tag::KEY_HLS_PUSH, index),
            hls_firmware: key16(seed, tag::KEY_HLS_FW, index),
            master_key: key16(seed, tag::KEY_MASTER, index),
        }
    }
}

/// The keys meter `index` holds now: as derived, with the global keys a key transfer installed
/// (if any).
pub(crate) fn current(shared: &crate::fleet::Shared, index: u32) -> MeterKeys {
    let mut keys = MeterKeys::derive(shared.config.seed, index);
    if let Some(rotated) = shared.peek(index, |s| s.and_then(|s| s.global_keys.clone())) {
        keys.global_encryption_key = rotated.encryption;
        keys.global_authentication_key = rotated.authentication;
    }
    keys
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Where a meter is reachable, for the key file.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub address: Ipv4Addr,
    pub port: u16,
    pub transport: Transport,
}

#[derive(Serialize)]
struct KeyFile<'a> {
    format: &'static str,
    meters: Vec<KeyFileMeter<'a>>,
}

#[derive(Serialize)]
struct KeyFileMeter<'a> {
    serial: &'a str,
    kind: &'static str,
    address: String,
    port: u16,
    transport: &'static str,
    server_sap: u16,
    system_title: String,
    global_encryption_key: String,
    global_authentication_key: String,
    master_key: String,
    associations: Vec<KeyFileAssociation>,
}

#[derive(Serialize)]
struct KeyFileAssociation {
    name: &'static str,
    client_sap: u16,
    mechanism: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    security: &'static str,
}

/// The server SAP (logical device) every simulated meter answers on.
pub const SERVER_SAP: u16 = 1;

fn associations(k: &MeterKeys) -> Vec<KeyFileAssociation> {
    let hls = |name, client_sap, secret: &[u8; 16]| KeyFileAssociation {
        name,
        client_sap,
        mechanism: "hls",
        secret: Some(hex(secret)),
        security: "authenticated-encryption",
    };
    vec![
        KeyFileAssociation {
            name: "public",
            client_sap: 16,
            mechanism: "none",
            secret: None,
            security: "none",
        },
        KeyFileAssociation {
            name: "meter-reader",
            client_sap: 32,
            mechanism: "lls",
            secret: Some(k.lls_secret.clone()),
            security: "none",
        },
        hls("utility-settings", 48, &k.hls_utility),
        hls("push", 64, &k.hls_push),
        hls("firmware", 80, &k.hls_firmware),
    ]
}

/// Creates (or truncates) `path` readable and writable by its owner only.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = options.mode(0o600).open(path)?;
        // An existing file keeps its mode through `open`: tighten it too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}

/// Writes the key file for these meters: CSV when the path ends in `.csv`, JSON otherwise.
/// The file is created readable by its owner only.
pub fn write_key_file(
    path: &Path,
    seed: u64,
    meters: impl Iterator<Item = (u32, Endpoint)>,
) -> std::io::Result<()> {
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut out = std::io::BufWriter::new(create_private(path)?);
    write_keys(&mut out, csv, seed, meters)?;
    out.flush()
}

/// Writes the key file's content (CSV or JSON) to `out`, e.g. to hand it to a head-end in
/// memory without a plaintext copy on disk.
pub fn write_keys(
    mut out: impl Write,
    csv: bool,
    seed: u64,
    meters: impl Iterator<Item = (u32, Endpoint)>,
) -> std::io::Result<()> {
    if csv {
        writeln!(
            out,
            "serial,kind,address,port,transport,server_sap,system_title,global_encryption_key,\
             global_authentication_key,lls_secret,hls_secret_utility,hls_secret_push,\
             hls_secret_firmware,master_key"
        )?;
        for (index, ep) in meters {
            let k = MeterKeys::derive(seed, index);
            writeln!(
                out,
                "{},single-phase,{},{},{},{},{},{},{},{},{},{},{},{}",
                k.serial,
                ep.address,
                ep.port,
                ep.transport.name(),
                SERVER_SAP,
                hex(&k.system_title),
                hex(&k.global_encryption_key),
                hex(&k.global_authentication_key),
                k.lls_secret,
                hex(&k.hls_utility),
                hex(&k.hls_push),
                hex(&k.hls_firmware),
                hex(&k.master_key),
            )?;
        }
    } else {
        let keys: Vec<(MeterKeys, Endpoint)> = meters
            .map(|(i, ep)| (MeterKeys::derive(seed, i), ep))
            .collect();
        let file = KeyFile {
            format: "urja-sim-keys/1",
            meters: keys
                .iter()
                .map(|(k, ep)| KeyFileMeter {
                    serial: &k.serial,
                    kind: "single-phase",
                    address: ep.address.to_string(),
                    port: ep.port,
                    transport: ep.transport.name(),
                    server_sap: SERVER_SAP,
                    system_title: hex(&k.system_title),
                    global_encryption_key: hex(&k.global_encryption_key),
                    global_authentication_key: hex(&k.global_authentication_key),
                    master_key: hex(&k.master_key),
                    associations: associations(k),
                })
                .collect(),
        };
        serde_json::to_writer_pretty(&mut out, &file)?;
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_distinct_and_redacted() {
        let a = MeterKeys::derive(5, 0);
        assert_eq!(a, MeterKeys::derive(5, 0));
        assert_ne!(a, MeterKeys::derive(5, 1));
        assert_ne!(
            a.global_encryption_key,
            MeterKeys::derive(6, 0).global_encryption_key
        );
        assert_eq!(a.serial, "URJ10000001");
        assert_eq!(&a.system_title[..3], b"URJ");
        assert!(a.lls_secret.len() == 16 && a.lls_secret.bytes().all(|b| b.is_ascii_graphic()));
        let dbg = format!("{a:?}");
        assert!(!dbg.contains(&hex(&a.global_encryption_key)));
        assert!(!dbg.contains(&a.lls_secret));
        assert!(!dbg.contains(&hex(&a.master_key)));
        let all = [
            a.global_encryption_key,
            a.global_authentication_key,
            a.hls_utility,
            a.hls_push,
            a.hls_firmware,
            a.master_key,
        ];
        for (i, k) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|o| o != k), "key {i} repeats");
        }
    }

    #[test]
    fn key_files_have_the_contract_shape() {
        let dir = std::env::temp_dir().join(format!("urja-sim-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ep = |i: u32| Endpoint {
            address: Ipv4Addr::new(127, 1, 0, 1 + i as u8),
            port: 4059,
            transport: Transport::Wrapper,
        };
        let json = dir.join("keys.json");
        write_key_file(&json, 3, (0..2).map(|i| (i, ep(i)))).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["format"], "urja-sim-keys/1");
        let m = &v["meters"][1];
        assert_eq!(m["serial"], "URJ10000002");
        assert_eq!(m["address"], "127.1.0.2");
        assert_eq!(m["transport"], "wrapper");
        assert_eq!(m["server_sap"], 1);
        assert_eq!(m["system_title"].as_str().unwrap().len(), 16);
        assert_eq!(m["global_encryption_key"].as_str().unwrap().len(), 32);
        let master = MeterKeys::derive(3, 1).master_key;
        assert_eq!(m["master_key"], hex(&master));
        let assoc = m["associations"].as_array().unwrap();
        let saps: Vec<u64> = assoc
            .iter()
            .map(|a| a["client_sap"].as_u64().unwrap())
            .collect();
        assert_eq!(saps, [16, 32, 48, 64, 80]);
        assert!(assoc[0].get("secret").is_none());
        assert_eq!(assoc[1]["mechanism"], "lls");
        assert_eq!(assoc[2]["mechanism"], "hls");
        assert_eq!(assoc[2]["security"], "authenticated-encryption");
        assert_eq!(assoc[2]["secret"].as_str().unwrap().len(), 32);

        let csv = dir.join("keys.csv");
        // An existing file with a loose mode is tightened too.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&csv, "old").unwrap();
            std::fs::set_permissions(&csv, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        write_key_file(&csv, 3, (0..2).map(|i| (i, ep(i)))).unwrap();
        #[cfg(unix)]
        for path in [&json, &csv] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        let text = std::fs::read_to_string(&csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("serial,kind,address,port,transport,server_sap,system_title"));
        assert!(lines[0].ends_with(",hls_secret_firmware,master_key"));
        assert_eq!(lines[1].split(',').count(), 14);
        assert!(lines[2].ends_with(&format!(",{}", hex(&master))));
        assert!(lines[2].starts_with("URJ10000002,single-phase,127.1.0.2,4059,wrapper,1,"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
