//! Server secrets generated on first start and reused afterwards, each in its
//! own file under `DATA_DIR/secrets/` with mode 0600 (directory 0700):
//! - `cookie.key`: HMAC key for CSRF tokens and signed cookies;
//! - `encryption.key`: at-rest encryption key for stored secrets (token-signing
//!   keys in the database, later TOTP seeds).
//! - `vapid.key`: the secret scalar of the P-256 key the server signs Web Push
//!   requests with (VAPID, RFC 8292); phones subscribe to its public key, so
//!   a new one would silence every paired phone until it subscribes again.
//!
//! A new key is written to a file of its own and then linked in under its
//! name, so two processes starting at once never both write one and never
//! read one half-written; the loser reads the winner's key.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::secrets::random_bytes;
use zeroize::Zeroizing;

/// The server's secrets.
pub struct ServerKeys {
    /// HMAC key for CSRF tokens and cookies.
    pub cookie: [u8; 32],
    /// At-rest encryption key.
    pub encryption: [u8; 32],
    /// The VAPID key's secret scalar (Web Push).
    pub vapid: [u8; 32],
}

/// A key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("secret key file {path}: {message}")]
pub struct KeyError {
    path: PathBuf,
    message: String,
}

impl ServerKeys {
    /// Loads the keys in `data_dir`, generating those that do not exist yet.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let dir = data_dir.join("secrets");
        fs::create_dir_all(&dir).map_err(|e| KeyError { path: dir.clone(), message: e.to_string() })?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|e| KeyError { path: dir.clone(), message: e.to_string() })?;
        Ok(Self {
            cookie: key_file(&dir.join("cookie.key"))?,
            encryption: key_file(&dir.join("encryption.key"))?,
            vapid: key_file(&dir.join("vapid.key"))?,
        })
    }
}

fn key_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let err = |message: String| KeyError { path: path.to_owned(), message };
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            create_key_file(path).map_err(|e| err(e.to_string()))?;
            fs::File::open(path).map_err(|e| err(e.to_string()))?
        }
        Err(e) => return Err(err(e.to_string())),
    };
    remove_old_drafts(path);
    let mode = file.metadata().map_err(|e| err(e.to_string()))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(err(format!("permissions {:o} let other users read it; run chmod 600 on it", mode & 0o777)));
    }
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(|e| err(e.to_string()))?;
    let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| err("is not base64".into()))?);
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| err("must hold 32 bytes".into()))
}

/// The name of a draft of the key file at `path`.
fn draft_prefix(path: &Path) -> String {
    format!(".{}.", path.file_name().and_then(|n| n.to_str()).unwrap_or("key"))
}

/// Writes a new key to a draft file of its own, then links it in under
/// `path`: the link appears whole or not at all, so of several processes
/// starting at once (nodes sharing the directory) one key wins and none ever
/// reads a file still being written; a loser's link fails with
/// `AlreadyExists`. On a file system without hard links, the key is written
/// in place with `create_new` (one winner still, but a process starting at
/// that very moment could read it half-written and stop; it starts next time).
fn create_key_file(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let draft = dir.join(format!("{}{}", draft_prefix(path), uuid::Uuid::new_v4().simple()));
    let encoded = Zeroizing::new(STANDARD.encode(random_bytes::<32>()));
    let write_new = |at: &Path| -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(at)?;
        file.write_all(encoded.as_bytes())?;
        file.sync_all()
    };
    write_new(&draft)?;
    let linked = fs::hard_link(&draft, path);
    let _ = fs::remove_file(&draft);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::Unsupported) || e.raw_os_error() == Some(EOPNOTSUPP) => {
            match write_new(path) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
                other => other?,
            }
        }
        Err(e) => return Err(e),
    }
    tracing::info!(path = %path.display(), "generated a new secret key");
    // The new name must survive a crash too; a file system that cannot sync
    // a directory still has the key.
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(path = %dir.display(), error = %e, "could not sync the secrets directory");
    }
    Ok(())
}

/// `EOPNOTSUPP` on Linux (a file system without hard links).
const EOPNOTSUPP: i32 = 95;

/// Drafts left by a process that stopped between writing and removing one
/// (a second name for a key, or a key that never won) are removed once
/// they are a minute old (younger ones may be another process's, in flight).
fn remove_old_drafts(path: &Path) {
    let (Some(dir), prefix) = (path.parent(), draft_prefix(path)) else { return };
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60));
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) && old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn processes_starting_at_once_all_read_the_one_key_that_won() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
                let starts: Vec<_> = (0..8).map(|_| s.spawn(|| ServerKeys::load_or_create(dir.path()).unwrap().encryption)).collect();
                starts.into_iter().map(|t| t.join().unwrap()).collect()
            });
            assert!(keys.iter().all(|k| *k == keys[0]), "every start read the same, whole key");
            let names: Vec<_> = fs::read_dir(dir.path().join("secrets")).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names.len(), 3, "no draft left behind: {names:?}");
        }
    }

    #[test]
    fn keys_are_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServerKeys::load_or_create(dir.path()).unwrap();
        let file = dir.path().join("secrets/encryption.key");
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(dir.path().join("secrets")).unwrap().permissions().mode() & 0o777, 0o700);
        let again = ServerKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(first.encryption, again.encryption);
        assert_eq!(first.cookie, again.cookie);
        assert_ne!(first.cookie, first.encryption);
        assert_eq!(first.vapid, again.vapid, "phones stay subscribed across restarts");
        assert_ne!(first.vapid, first.encryption);

        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let e = ServerKeys::load_or_create(dir.path()).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
