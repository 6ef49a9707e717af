//! The master key: the one AES-256 key that seals every meter's credentials at rest.
//!
//! Where it comes from, first match wins:
//! 1. the environment variable `URJA_MASTER_KEY`: 64 hex digits (surrounding whitespace ignored);
//!    anything else is an error naming the variable, never showing its value;
//! 2. the file `<data dir>/master.key`: 64 hex digits on one line, readable by its owner only
//!    (a file with any group or other permission bit is refused on unix);
//! 3. otherwise 32 fresh random bytes, written to `<data dir>/master.key` with mode 0600 through
//!    a temporary file that is linked into place, so a reader never sees a partial key and two
//!    head-ends starting at once agree on one key.
//!
//! The [fingerprint](MasterKey::fingerprint) (16 hex digits of SHA-256 over a fixed label and the
//! key) identifies a key without revealing it: the head-end stores it with the sealed credentials
//! and refuses to start with another key ([`MasterKey::verify_fingerprint`]).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{HexProblem, KeyStoreError, decode_hex};

/// The environment variable that supplies the master key.
pub const MASTER_KEY_ENV: &str = "URJA_MASTER_KEY";
/// The master key file's name inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const FINGERPRINT_LABEL: &[u8] = b"urja/master-key-fingerprint/1\0";
/// A key file is one line; anything longer than this is not a key file.
const MAX_KEY_FILE_LEN: u64 = 1024;

/// An AES-256 key. Its bytes never appear in `Debug`; they are zeroised when it is dropped.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// Where the master key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// From `URJA_MASTER_KEY`.
    Environment,
    /// From an existing key file.
    File { path: PathBuf },
    /// Freshly generated and written to this file (back it up: without it the sealed
    /// credentials cannot be opened).
    Generated { path: PathBuf },
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(bytes)
    }

    /// 32 random bytes from the operating system.
    pub fn generate() -> Result<Self, KeyStoreError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyStoreError::Random(e.to_string()))?;
        Ok(MasterKey(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The head-end's master key: from `URJA_MASTER_KEY`, else `<data_dir>/master.key`, else
    /// generated into that file (see the module documentation).
    pub fn load(data_dir: &Path) -> Result<(MasterKey, MasterKeySource), KeyStoreError> {
        Self::load_with(std::env::var_os(MASTER_KEY_ENV).as_deref(), data_dir)
    }

    /// [`MasterKey::load`] with the environment variable's value passed in (`None` when unset).
    pub fn load_with(
        env_value: Option<&OsStr>,
        data_dir: &Path,
    ) -> Result<(MasterKey, MasterKeySource), KeyStoreError> {
        if let Some(value) = env_value {
            let text = Zeroizing::new(value.to_string_lossy().into_owned());
            let bytes = decode_hex::<32>(text.trim())
                .map_err(|problem| KeyStoreError::MasterKeyEnv { problem })?;
            return Ok((MasterKey(bytes), MasterKeySource::Environment));
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        match read_key_file(&path)? {
            Some(key) => Ok((key, MasterKeySource::File { path })),
            None => generate_key_file(data_dir, &path),
        }
    }

    /// 16 hex digits identifying this key without revealing it.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::new()
            .chain_update(FINGERPRINT_LABEL)
            .chain_update(self.0)
            .finalize();
        hex::encode(digest.get(..8).unwrap_or_default())
    }

    /// Checks this key against the fingerprint stored when the data directory was first used
    /// (`None`: nothing stored yet, any key is accepted and the caller stores this one's).
    pub fn verify_fingerprint(&self, stored: Option<&str>) -> Result<(), KeyStoreError> {
        let found = self.fingerprint();
        match stored {
            None => Ok(()),
            Some(stored) if stored.trim().eq_ignore_ascii_case(&found) => Ok(()),
            Some(stored) => Err(KeyStoreError::WrongMasterKey {
                stored: stored.trim().to_owned(),
                found,
            }),
        }
    }
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KeyStoreError {
    let path = path.to_path_buf();
    move |source| KeyStoreError::Io { what, path, source }
}

/// Reads an existing key file; `None` when there is none.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, KeyStoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot open master key file", path)(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(io_error("cannot inspect master key file", path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyStoreError::LoosePermissions {
                path: path.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
    }
    let mut raw = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut raw)
        .map_err(io_error("cannot read master key file", path))?;
    let text = Zeroizing::new(String::from_utf8_lossy(&raw).into_owned());
    let problem = |problem| KeyStoreError::MasterKeyFile {
        path: path.to_path_buf(),
        problem,
    };
    if raw.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(problem(HexProblem::Length {
            expected: 64,
            found: text.chars().count(),
        }));
    }
    let bytes = decode_hex::<32>(text.trim()).map_err(problem)?;
    Ok(Some(MasterKey(bytes)))
}

/// Generates a key and links it into place at `path`, unless another process got there first
/// (then its key is the key).
fn generate_key_file(
    data_dir: &Path,
    path: &Path,
) -> Result<(MasterKey, MasterKeySource), KeyStoreError> {
    fs::create_dir_all(data_dir).map_err(io_error("cannot create data directory", data_dir))?;
    let key = MasterKey::generate()?;
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).map_err(|e| KeyStoreError::Random(e.to_string()))?;
    let temp = data_dir.join(format!(
        ".{MASTER_KEY_FILE}.{}.{}.tmp",
        std::process::id(),
        hex::encode(tag)
    ));
    let written = write_private(&temp, &key);
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error("cannot write master key file", path)(e));
    }
    // A hard link never replaces an existing file, unlike a rename.
    let linked = match fs::hard_link(&temp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // A file system without hard links: rename, unless a key appeared meanwhile.
        Err(_) if path.exists() => Ok(false),
        Err(_) => fs::rename(&temp, path).map(|()| true),
    };
    let _ = fs::remove_file(&temp);
    match linked.map_err(io_error("cannot install master key file", path))? {
        true => {
            sync_dir(data_dir);
            Ok((
                key,
                MasterKeySource::Generated {
                    path: path.to_path_buf(),
                },
            ))
        }
        false => match read_key_file(path)? {
            Some(theirs) => Ok((
                theirs,
                MasterKeySource::File {
                    path: path.to_path_buf(),
                },
            )),
            None => Err(io_error("cannot install master key file", path)(
                std::io::Error::new(std::io::ErrorKind::NotFound, "it vanished"),
            )),
        },
    }
}

/// Creates `path` (which must not exist) with mode 0600 and writes the key in hex, durably.
fn write_private(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let mut line = Zeroizing::new(hex::encode(key.bytes()));
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

/// Makes a new directory entry durable (best effort: not every platform can sync a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_short_and_key_specific() {
        let a = MasterKey::from_bytes([7; 32]);
        let fp = a.fingerprint();
        assert_eq!(fp.len(), 16);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(fp, MasterKey::from_bytes([7; 32]).fingerprint());
        assert_ne!(fp, MasterKey::from_bytes([8; 32]).fingerprint());
        assert!(a.verify_fingerprint(None).is_ok());
        assert!(a.verify_fingerprint(Some(&fp.to_uppercase())).is_ok());
        let err = MasterKey::from_bytes([8; 32])
            .verify_fingerprint(Some(&fp))
            .unwrap_err();
        assert!(matches!(err, KeyStoreError::WrongMasterKey { .. }));
        assert!(err.to_string().contains(&fp), "{err}");
    }

    #[test]
    fn debug_shows_the_fingerprint_not_the_key() {
        let key = MasterKey::from_bytes([0xAB; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.fingerprint()));
        assert!(!shown.to_lowercase().contains("abab") && !shown.contains("171"));
    }
}
