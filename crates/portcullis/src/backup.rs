//! Backups of a SQLite installation: one file holding a consistent snapshot
//! of the database, the secrets directory and a manifest, optionally sealed
//! with a passphrase; checked before anything is restored from it.
//!
//! The file is a tar archive (`manifest.json` first, then `portcullis.db`
//! and `secrets/NAME`), so an unsealed backup can be looked into with `tar tf`.
//! A sealed one is that archive inside [`portcullis_core::sealed_file`].
//! PostgreSQL installations back up with `pg_dump` plus the secrets
//! directory (README, Operations).

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use portcullis_core::sealed_file;
use portcullis_store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;

/// What `manifest.json` says the backup holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Always `"portcullis-backup"`.
    pub format: String,
    /// This layout's version (1).
    pub format_version: u32,
    /// The Portcullis version that wrote it.
    pub portcullis_version: String,
    /// When it was taken (Unix seconds).
    pub created_at: i64,
    /// The database backend (`"sqlite"`).
    pub backend: String,
    /// The newest migration applied to the database copy.
    pub schema_version: i64,
    /// Every other file in the archive, with its size and SHA-256.
    pub files: Vec<ManifestFile>,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    /// Its name in the archive.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of its content, hexadecimal.
    pub sha256: String,
}

/// Why a backup could not be written, checked or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The backup file is not a usable Portcullis backup.
    #[error("not a usable backup: {0}")]
    Invalid(String),
    /// Sealing or opening with the passphrase failed.
    #[error(transparent)]
    Sealed(#[from] sealed_file::SealedFileError),
    /// The database refused.
    #[error("database: {0}")]
    Store(String),
    /// What was asked cannot be done as asked.
    #[error("{0}")]
    Refused(String),
}

const FORMAT: &str = "portcullis-backup";
const DATABASE: &str = "portcullis.db";
const MANIFEST: &str = "manifest.json";
/// The secrets a backup must hold: without `encryption.key` nothing sealed
/// in the database opens; without `cookie.key` no session continues.
const REQUIRED_SECRETS: [&str; 2] = ["cookie.key", "encryption.key"];

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.to_string();
    move |e| BackupError::Io(what, e)
}

fn store_error(e: impl std::fmt::Display) -> BackupError {
    BackupError::Store(e.to_string())
}

/// A temporary directory only the owner may enter, next to `near` (same file system, so renames work).
fn private_tempdir(near: &Path) -> Result<tempfile::TempDir, BackupError> {
    tempfile::Builder::new()
        .prefix(".portcullis-backup-")
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(near)
        .map_err(io(format!("a temporary directory in {}", near.display())))
}

/// A new file with mode 0600; fails if it exists.
fn create_private(path: &Path) -> Result<File, BackupError> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io(path.display()))
}

/// Copies `from` to `to`; returns the size and SHA-256 of what went through.
fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<(u64, String)> {
    let (mut hash, mut bytes, mut buf) = (Sha256::new(), 0u64, vec![0u8; 64 * 1024]);
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
        to.write_all(&buf[..n])?;
    }
    to.flush()?;
    Ok((bytes, hex(&hash.finalize())))
}

/// Size and SHA-256 of a file.
fn digest_of(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = BufReader::new(File::open(path).map_err(io(path.display()))?);
    copy_hashing(&mut file, &mut std::io::sink()).map_err(io(path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret file's name as kept in the archive: plain names only, no drafts.
fn secret_name_ok(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The SQLite database file of `config`, or a refusal for PostgreSQL.
fn sqlite_file(config: &Config) -> Result<PathBuf, BackupError> {
    crate::sqlite_path(&config.database_url()).ok_or_else(|| {
        BackupError::Refused(
            "backup, verify-backup and restore are for SQLite; with PostgreSQL, back up with pg_dump and copy the secrets directory \
             (README, Operations)"
                .into(),
        )
    })
}

/// Writes a backup of the running installation to `to` (a new file, mode
/// 0600): a consistent snapshot of the database taken while servers keep
/// using it, every secret, and the manifest; sealed when a passphrase is given.
pub async fn write(config: &Config, store: &Store, to: &Path, passphrase: Option<&str>, now: i64) -> Result<Manifest, BackupError> {
    sqlite_file(config)?;
    let live = store.schema_version().await.map_err(store_error)?;
    if live > store.latest_schema_version() {
        return Err(BackupError::Refused(format!(
            "the database has schema {live}, newer than this build knows ({}): back it up with the Portcullis that runs it",
            store.latest_schema_version()
        )));
    }
    if fs::symlink_metadata(to).is_ok() {
        return Err(BackupError::Refused(format!("{} exists; a backup never overwrites a file", to.display())));
    }
    // Everything in the clear stays in the data directory; only the finished
    // file (sealed, when a passphrase is given) goes where the backup goes.
    let work = private_tempdir(&config.data_dir)?;
    let snapshot = work.path().join(DATABASE);
    store.snapshot_to(&snapshot).await.map_err(store_error)?;
    let schema_version = schema_version_of(&snapshot).await?;

    let mut files = vec![(DATABASE.to_owned(), snapshot)];
    let secrets = config.data_dir.join("secrets");
    let mut names: Vec<String> = fs::read_dir(&secrets)
        .map_err(io(secrets.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| secret_name_ok(n))
        // A key may be a link to where it is kept (as the server reads it).
        .filter(|n| fs::metadata(secrets.join(n)).is_ok_and(|m| m.is_file()))
        .collect();
    names.sort();
    if let Some(missing) = REQUIRED_SECRETS.iter().find(|r| !names.iter().any(|n| n == *r)) {
        return Err(BackupError::Refused(format!("{} has no {missing}: nothing started here yet", secrets.display())));
    }
    files.extend(names.into_iter().map(|n| (format!("secrets/{n}"), secrets.join(n))));
    let mut manifest = Manifest {
        format: FORMAT.into(),
        format_version: 1,
        portcullis_version: env!("CARGO_PKG_VERSION").into(),
        created_at: now,
        backend: "sqlite".into(),
        schema_version,
        files: Vec::new(),
    };
    for (name, path) in &files {
        let (bytes, sha256) = digest_of(path)?;
        manifest.files.push(ManifestFile { path: name.clone(), bytes, sha256 });
    }

    let archive = work.path().join("backup.tar");
    {
        let mut tar = tar::Builder::new(BufWriter::new(create_private(&archive)?));
        let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Invalid(e.to_string()))?;
        let add = |tar: &mut tar::Builder<_>, name: &str, size: u64, content: &mut dyn Read| {
            let mut header = tar::Header::new_gnu();
            header.set_size(size);
            header.set_mode(0o600);
            header.set_mtime(u64::try_from(now).unwrap_or(0));
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, content).map_err(io(archive.display()))
        };
        add(&mut tar, MANIFEST, manifest_json.len() as u64, &mut manifest_json.as_slice())?;
        for (name, path) in &files {
            let size = fs::metadata(path).map_err(io(path.display()))?.len();
            add(&mut tar, name, size, &mut File::open(path).map_err(io(path.display()))?)?;
        }
        tar.into_inner().map_err(io(archive.display()))?.flush().map_err(io(archive.display()))?;
    }
    let finished = match passphrase {
        None => archive,
        Some(p) => {
            let sealed = work.path().join("backup.sealed");
            let mut out = BufWriter::new(create_private(&sealed)?);
            sealed_file::seal(p, &mut BufReader::new(File::open(&archive).map_err(io(archive.display()))?), &mut out)?;
            out.into_inner().map_err(|e| BackupError::Io(sealed.display().to_string(), e.into_error()))?;
            sealed
        }
    };
    publish(&finished, to)?;
    Ok(manifest)
}

/// Writes `finished` to the new file `to` (mode 0600): first to a draft of
/// its own next to it, then linked in, so `to` appears whole or not at all and
/// never replaces a file or follows a link someone put there meanwhile.
fn publish(finished: &Path, to: &Path) -> Result<(), BackupError> {
    let parent = to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let draft = parent.join(format!(".portcullis-backup-{}.partial", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut out = create_private(&draft)?;
        std::io::copy(&mut File::open(finished).map_err(io(finished.display()))?, &mut out).map_err(io(draft.display()))?;
        out.sync_all().map_err(io(draft.display()))?;
        match fs::hard_link(&draft, to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(BackupError::Refused(format!("{} exists; a backup never overwrites a file", to.display())))
            }
            // No hard links here: a rename could replace a file made meanwhile, so copy once more, exclusively.
            Err(_) => {
                let mut out = create_private(to)?;
                std::io::copy(&mut File::open(&draft).map_err(io(draft.display()))?, &mut out).map_err(io(to.display()))?;
                out.sync_all().map_err(io(to.display()))
            }
        }
    })();
    let _ = fs::remove_file(&draft);
    written
}

/// The schema version of a SQLite database file, opened on its own.
async fn schema_version_of(path: &Path) -> Result<i64, BackupError> {
    let store = Store::connect(&format!("sqlite:{}", path.display())).await.map_err(store_error)?;
    let version = store.schema_version().await.map_err(store_error);
    store.close().await;
    version
}

/// A backup unpacked into a private directory and checked.
pub struct Unpacked {
    /// What it holds.
    pub manifest: Manifest,
    /// The directory holding `portcullis.db` and `secrets/` (removed on drop).
    pub dir: tempfile::TempDir,
}

/// Unpacks the backup at `from` into a private directory next to `near`,
/// checking the manifest against every file (names, sizes, SHA-256), the
/// database's integrity and that this build knows its schema.
pub async fn unpack(from: &Path, passphrase: Option<&str>, near: &Path) -> Result<Unpacked, BackupError> {
    let dir = private_tempdir(near)?;
    let mut start = [0u8; sealed_file::MAGIC.len()];
    let n = File::open(from).and_then(|mut f| f.read(&mut start)).map_err(io(from.display()))?;
    let archive = if sealed_file::is_sealed(&start[..n]) {
        let Some(p) = passphrase else {
            return Err(BackupError::Refused("the backup is sealed with a passphrase: give it with --passphrase-stdin".into()));
        };
        let opened = dir.path().join("backup.tar");
        let mut out = BufWriter::new(create_private(&opened)?);
        sealed_file::open(p, &mut BufReader::new(File::open(from).map_err(io(from.display()))?), &mut out)?;
        out.flush().map_err(io(opened.display()))?;
        opened
    } else if passphrase.is_some() {
        // A sealed backup swapped for a plain one (anyone can write a plain one, checksums and all) is refused.
        return Err(BackupError::Refused(
            "the backup is not sealed, but a passphrase was given: refusing a backup that may have been replaced; \
             without --passphrase-stdin a plain backup is read as such"
                .into(),
        ));
    } else {
        from.to_owned()
    };
    let manifest = extract(&archive, dir.path())?;
    let database = dir.path().join(DATABASE);
    let store = Store::connect(&format!("sqlite:{}", database.display())).await.map_err(store_error)?;
    let checked = async {
        let findings = store.integrity_check().await.map_err(store_error)?;
        if findings != ["ok"] {
            return Err(BackupError::Invalid(format!("the database copy is damaged: {}", findings.join("; "))));
        }
        let version = store.schema_version().await.map_err(store_error)?;
        if version != manifest.schema_version {
            return Err(BackupError::Invalid(format!("schema {version}, but the manifest says {}", manifest.schema_version)));
        }
        if version > store.latest_schema_version() {
            return Err(BackupError::Invalid(format!(
                "made by a newer Portcullis (schema {version}; this one knows up to {})",
                store.latest_schema_version()
            )));
        }
        Ok(())
    }
    .await;
    store.close().await;
    checked?;
    Ok(Unpacked { manifest, dir })
}

/// Extracts the archive's files into `dir` under names of our own making
/// (never a path from the archive), checking each against the manifest.
fn extract(archive: &Path, dir: &Path) -> Result<Manifest, BackupError> {
    let invalid = |m: String| BackupError::Invalid(m);
    let mut tar = tar::Archive::new(BufReader::new(File::open(archive).map_err(io(archive.display()))?));
    let mut entries = tar.entries().map_err(io(archive.display()))?;
    let mut first = entries.next().ok_or_else(|| invalid("the archive is empty".into()))?.map_err(io(archive.display()))?;
    if first.path().map_err(io(archive.display()))?.to_str() != Some(MANIFEST) || first.size() > 1 << 20 {
        return Err(invalid(format!("{MANIFEST} must come first")));
    }
    let mut text = Vec::new();
    first.read_to_end(&mut text).map_err(io(archive.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| invalid(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT || manifest.format_version != 1 || manifest.backend != "sqlite" {
        return Err(invalid(format!(
            "format {:?} version {} for {:?}; this build reads {FORMAT} version 1 for sqlite",
            manifest.format, manifest.format_version, manifest.backend
        )));
    }
    fs::create_dir(dir.join("secrets")).map_err(io(dir.display()))?;
    let mut seen = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(io(archive.display()))?;
        let name = entry.path().map_err(io(archive.display()))?.to_str().unwrap_or("").to_owned();
        let listed = manifest.files.iter().find(|f| f.path == name).ok_or_else(|| invalid(format!("{name:?} is not in the manifest")))?;
        let target = match name.strip_prefix("secrets/") {
            Some(secret) if secret_name_ok(secret) => dir.join("secrets").join(secret),
            None if name == DATABASE => dir.join(DATABASE),
            _ => return Err(invalid(format!("unexpected file {name:?}"))),
        };
        if seen.contains(&name) {
            return Err(invalid(format!("{name:?} appears twice")));
        }
        // A plain file of the declared size only (a sparse entry could expand
        // to any size), and never more read than the manifest says.
        if entry.header().entry_type() != tar::EntryType::Regular || entry.size() != listed.bytes {
            return Err(invalid(format!("{name} is not a plain file of the size the manifest gives")));
        }
        let mut out = BufWriter::new(create_private(&target)?);
        let (bytes, sha256) = copy_hashing(&mut (&mut entry).take(listed.bytes), &mut out).map_err(io(format!(
            "{} into {}",
            archive.display(),
            target.display()
        )))?;
        if bytes != listed.bytes || sha256 != listed.sha256 {
            return Err(invalid(format!("{name} does not match its checksum in the manifest")));
        }
        seen.push(name);
    }
    for f in &manifest.files {
        if !seen.contains(&f.path) {
            return Err(invalid(format!("{} is listed in the manifest but missing", f.path)));
        }
    }
    if !seen.iter().any(|n| n == DATABASE) || REQUIRED_SECRETS.iter().any(|r| !seen.contains(&format!("secrets/{r}"))) {
        return Err(invalid(format!("a backup holds the database and the secrets {}", REQUIRED_SECRETS.join(" and "))));
    }
    Ok(manifest)
}

/// Restores the backup at `from` into the configured data directory and
/// SQLite file. Refuses a directory that already holds a database or
/// secrets unless `force` (every server using it must be stopped first:
/// the files are replaced under it). Checks the whole backup before
/// touching anything, then migrates the restored database to this build.
pub async fn restore(config: &Config, from: &Path, passphrase: Option<&str>, force: bool) -> Result<Manifest, BackupError> {
    let database = sqlite_file(config)?;
    crate::create_private_dir(&config.data_dir).map_err(|e| BackupError::Refused(e.to_string()))?;
    let secrets = config.data_dir.join("secrets");
    let in_use = fs::metadata(&database).is_ok_and(|m| m.len() > 0)
        || fs::read_dir(&secrets).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_str().is_some_and(secret_name_ok))));
    if in_use && !force {
        return Err(BackupError::Refused(format!(
            "{} already holds a database or secrets; stop every server using it and add --force to replace them",
            config.data_dir.display()
        )));
    }
    let database_dir = database.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let unpacked = unpack(from, passphrase, database_dir).await?;

    // Migrated to this build before anything is replaced, then compacted into
    // one self-contained file (no write-ahead log of its own to carry over).
    let copy = unpacked.dir.path().join(DATABASE);
    let ready = unpacked.dir.path().join("restored.db");
    let store = Store::connect(&format!("sqlite:{}", copy.display())).await.map_err(store_error)?;
    let migrated = async {
        store.migrate().await.map_err(store_error)?;
        store.snapshot_to(&ready).await.map_err(store_error)
    }
    .await;
    store.close().await;
    migrated?;
    File::open(&ready).and_then(|f| f.sync_all()).map_err(io(ready.display()))?;

    // What was there is kept beside it (`NAME.pre-restore`, with its
    // write-ahead log under SQLite's name for it; the secrets in
    // `secrets.pre-restore/`), never deleted.
    let aside = |path: &Path| PathBuf::from(format!("{}.pre-restore", path.display()));
    let old_database = aside(&database);
    let moved = fs::metadata(&database).is_ok();
    if moved {
        fs::rename(&database, &old_database).map_err(io(database.display()))?;
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        let stale = PathBuf::from(format!("{}{suffix}", database.display()));
        match fs::rename(&stale, format!("{}{suffix}", old_database.display())) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::Io(stale.display().to_string(), e)),
        }
    }
    if let Err(e) = fs::rename(&ready, &database) {
        if moved {
            let _ = fs::rename(&old_database, &database);
        }
        return Err(BackupError::Io(database.display().to_string(), e));
    }
    fs::set_permissions(&database, fs::Permissions::from_mode(0o600)).map_err(io(database.display()))?;

    fs::create_dir_all(&secrets).map_err(io(secrets.display()))?;
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o700)).map_err(io(secrets.display()))?;
    for f in &unpacked.manifest.files {
        let Some(name) = f.path.strip_prefix("secrets/") else { continue };
        let (target, draft) = (secrets.join(name), secrets.join(format!(".{name}.restoring")));
        if fs::metadata(&target).is_ok() {
            let kept = config.data_dir.join("secrets.pre-restore");
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&kept).map_err(io(kept.display()))?;
            fs::copy(&target, kept.join(name)).map_err(io(target.display()))?;
        }
        let _ = fs::remove_file(&draft);
        fs::copy(unpacked.dir.path().join("secrets").join(name), &draft).map_err(io(draft.display()))?;
        fs::set_permissions(&draft, fs::Permissions::from_mode(0o600)).map_err(io(draft.display()))?;
        File::open(&draft).and_then(|f| f.sync_all()).map_err(io(draft.display()))?;
        fs::rename(&draft, &target).map_err(io(target.display()))?;
    }
    Ok(unpacked.manifest)
}
