//! Server secrets generated on first start and reused afterwards, each in its
//! own file under `DATA_DIR/secrets/` with mode 0600 (directory 0700):
//! - `cookie.key`: HMAC key for CSRF tokens and signed cookies;
//! - `encryption.key`: at-rest encryption key for stored secrets (token-signing
//!   keys in the database, later TOTP seeds).
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
        Ok(Self { cookie: key_file(&dir.join("cookie.key"))?, encryption: key_file(&dir.join("encryption.key"))? })
    }
}

fn key_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let err = |message: String| KeyError { path: path.to_owned(), message };
    if !path.exists() {
        create_key_file(path).map_err(|e| err(e.to_string()))?;
    }
    let mut text = Zeroizing::new(String::new());
    let mut file = fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mode = file.metadata().map_err(|e| err(e.to_string()))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(err(format!("permissions {:o} let other users read it; run chmod 600 on it", mode & 0o777)));
    }
    file.read_to_string(&mut text).map_err(|e| err(e.to_string()))?;
    let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| err("is not base64".into()))?);
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| err("must hold 32 bytes".into()))
}

/// Writes a new key to a file of its own, then links it in under `path`:
/// the link appears whole or not at all, so of several processes starting at
/// once (nodes sharing the directory) one key wins and no process ever reads
/// a file still being written. A loser's link fails with `AlreadyExists`.
fn create_key_file(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    let draft = dir.join(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&draft)?;
        let encoded = Zeroizing::new(STANDARD.encode(random_bytes::<32>()));
        file.write_all(encoded.as_bytes())?;
        file.sync_all()?;
        match fs::hard_link(&draft, path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "generated a new secret key");
                // The new name must survive a crash too.
                fs::File::open(dir)?.sync_all()
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = fs::remove_file(&draft);
    written
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
            assert_eq!(names.len(), 2, "no draft left behind: {names:?}");
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

        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let e = ServerKeys::load_or_create(dir.path()).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
