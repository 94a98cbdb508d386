//! Server secrets generated on first start and reused afterwards, each in its
//! own file under `DATA_DIR/secrets/` with mode 0600 (directory 0700):
//! - `cookie.key`: HMAC key for CSRF tokens and signed cookies;
//! - `encryption.key`: at-rest encryption key for stored secrets (token-signing
//!   keys in the database, later TOTP seeds).
//!
//! Files are created with `create_new`, so two processes starting at once
//! cannot both write one; the loser reads the winner's key.

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
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut file) => {
            let key = random_bytes::<32>();
            let encoded = Zeroizing::new(STANDARD.encode(key));
            file.write_all(encoded.as_bytes()).and_then(|_| file.sync_all()).map_err(|e| err(e.to_string()))?;
            tracing::info!(path = %path.display(), "generated a new secret key");
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
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
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
