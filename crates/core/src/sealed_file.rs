//! Files sealed with a passphrase (encrypted backups).
//!
//! Layout: the magic line, a JSON header line (the key-derivation parameters,
//! salt and stream nonce), then the content in chunks of [`CHUNK`] bytes, each
//! sealed with XChaCha20-Poly1305 in the STREAM construction (Hoang, Reyhanitabar,
//! Rogaway, Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
//! Misuse-Resistance"): every chunk carries its position and whether it is the
//! last, so chunks cannot be reordered, dropped or the file cut short without
//! the opening failing. The header is the associated data of every chunk, so
//! its parameters cannot be changed either. The key is Argon2id over the
//! passphrase (64 MiB, 3 passes, one lane: RFC 9106 §4's second recommended
//! option in memory and passes, above OWASP's password-storage minimum).

use std::io::{Read, Write};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, Payload};
use zeroize::Zeroizing;

/// The first line of a sealed file.
pub const MAGIC: &[u8] = b"PORTCULLIS-SEALED-1\n";
/// Plaintext bytes per sealed chunk.
const CHUNK: usize = 64 * 1024;
/// Poly1305 tag length.
const TAG: usize = 16;
/// The shortest passphrase accepted for sealing.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Why a file could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealedFileError {
    /// The passphrase is too short to seal with.
    #[error("the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
    /// Not a sealed file, or its header is damaged.
    #[error("not a sealed file or its header is damaged: {0}")]
    Header(String),
    /// Wrong passphrase, or the content was changed, reordered or cut short.
    #[error("cannot open: wrong passphrase, or the file was changed or cut short")]
    Open,
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    kdf: String,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
    nonce: String,
}

/// True when `start` (the first bytes of a file) begins like a sealed file.
pub fn is_sealed(start: &[u8]) -> bool {
    start.starts_with(MAGIC)
}

fn key(passphrase: &str, h: &Header) -> Result<Zeroizing<[u8; 32]>, SealedFileError> {
    let bad = |e: String| SealedFileError::Header(e);
    if h.kdf != "argon2id" {
        return Err(bad(format!("unknown key derivation {:?}", h.kdf)));
    }
    // Bounds keep a forged header from making the opener spend gigabytes.
    if !(8 * 1024..=256 * 1024).contains(&h.memory_kib) || !(1..=8).contains(&h.iterations) || !(1..=8).contains(&h.parallelism) {
        return Err(bad("key-derivation parameters out of range".into()));
    }
    let params = Params::new(h.memory_kib, h.iterations, h.parallelism, Some(32)).map_err(|e| bad(e.to_string()))?;
    let salt = STANDARD.decode(&h.salt).map_err(|e| bad(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), &salt, &mut out[..])
        .map_err(|e| bad(e.to_string()))?;
    Ok(out)
}

/// Fills `buf` from `r` as far as it goes; returns how much was read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Seals everything `plain` yields into `out` under `passphrase`.
pub fn seal(passphrase: &str, plain: &mut impl Read, out: &mut impl Write) -> Result<(), SealedFileError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(SealedFileError::WeakPassphrase);
    }
    let header = Header {
        kdf: "argon2id".into(),
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
        salt: STANDARD.encode(crate::secrets::random_bytes::<16>()),
        nonce: STANDARD.encode(crate::secrets::random_bytes::<19>()),
    };
    let mut aad = MAGIC.to_vec();
    aad.extend(serde_json::to_vec(&header).map_err(|e| SealedFileError::Header(e.to_string()))?);
    aad.push(b'\n');
    let key = key(passphrase, &header)?;
    let nonce_bytes = STANDARD.decode(&header.nonce).map_err(|e| SealedFileError::Header(e.to_string()))?;
    let mut stream = EncryptorBE32::from_aead(XChaCha20Poly1305::new(key.as_slice().into()), nonce_bytes.as_slice().into());
    out.write_all(&aad)?;
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        let n = fill(plain, &mut buf)?;
        if n < CHUNK {
            let sealed = stream.encrypt_last(Payload { msg: &buf[..n], aad: &aad }).map_err(|_| SealedFileError::Open)?;
            out.write_all(&sealed)?;
            break;
        }
        let sealed = stream.encrypt_next(Payload { msg: &buf[..], aad: &aad }).map_err(|_| SealedFileError::Open)?;
        out.write_all(&sealed)?;
    }
    out.flush()?;
    Ok(())
}

/// Opens a sealed file from `sealed` into `out`. On an error, what was
/// written to `out` must be thrown away: chunks are checked one by one, and
/// only the last proves that nothing was cut off.
pub fn open(passphrase: &str, sealed: &mut impl Read, out: &mut impl Write) -> Result<(), SealedFileError> {
    let mut magic = [0u8; MAGIC.len()];
    if fill(sealed, &mut magic)? != MAGIC.len() || magic != MAGIC {
        return Err(SealedFileError::Header("it does not start with the sealed-file line".into()));
    }
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if fill(sealed, &mut byte)? == 0 || line.len() > 4096 {
            return Err(SealedFileError::Header("no header line".into()));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    let header: Header = serde_json::from_slice(&line).map_err(|e| SealedFileError::Header(e.to_string()))?;
    let nonce = STANDARD.decode(&header.nonce).map_err(|e| SealedFileError::Header(e.to_string()))?;
    if nonce.len() != 19 {
        return Err(SealedFileError::Header("the nonce must have 19 bytes".into()));
    }
    let mut aad = MAGIC.to_vec();
    aad.extend(&line);
    aad.push(b'\n');
    let key = key(passphrase, &header)?;
    let mut stream = DecryptorBE32::from_aead(XChaCha20Poly1305::new(key.as_slice().into()), nonce.as_slice().into());
    let mut buf = vec![0u8; CHUNK + TAG];
    loop {
        let n = fill(sealed, &mut buf)?;
        if n < CHUNK + TAG {
            let plain = Zeroizing::new(stream.decrypt_last(Payload { msg: &buf[..n], aad: &aad }).map_err(|_| SealedFileError::Open)?);
            out.write_all(&plain)?;
            break;
        }
        let plain = Zeroizing::new(stream.decrypt_next(Payload { msg: &buf[..], aad: &aad }).map_err(|_| SealedFileError::Open)?);
        out.write_all(&plain)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE: &str = "correct horse battery staple";

    fn sealed(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(PASSPHRASE, &mut &content[..], &mut out).unwrap();
        out
    }

    fn opened(passphrase: &str, file: &[u8]) -> Result<Vec<u8>, SealedFileError> {
        let mut out = Vec::new();
        open(passphrase, &mut &file[..], &mut out).map(|()| out)
    }

    #[test]
    fn content_of_every_size_round_trips_and_is_not_readable() {
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let file = sealed(&content);
            assert!(is_sealed(&file));
            assert_eq!(opened(PASSPHRASE, &file).unwrap(), content, "size {size}");
            if size > 64 {
                assert!(!file.windows(64).any(|w| w == &content[..64]), "the content shows through");
            }
        }
    }

    #[test]
    fn a_wrong_passphrase_a_changed_byte_or_a_cut_refuse_to_open() {
        let content = vec![7u8; 2 * CHUNK + 10];
        let file = sealed(&content);
        assert!(matches!(opened("correct horse battery stapler", &file), Err(SealedFileError::Open)));
        let header_end = file.iter().skip(MAGIC.len()).position(|&b| b == b'\n').unwrap() + MAGIC.len() + 1;
        for at in [header_end, header_end + CHUNK, file.len() - 1] {
            let mut changed = file.clone();
            changed[at] ^= 1;
            assert!(matches!(opened(PASSPHRASE, &changed), Err(SealedFileError::Open)), "byte {at}");
        }
        // Cut at a chunk boundary (the last chunk dropped) and mid-chunk.
        for len in [header_end + 2 * (CHUNK + TAG), header_end + CHUNK + TAG, file.len() - 5] {
            assert!(matches!(opened(PASSPHRASE, &file[..len]), Err(SealedFileError::Open)), "cut to {len}");
        }
        // Two chunks swapped.
        let mut swapped = file[..header_end].to_vec();
        swapped.extend(&file[header_end + CHUNK + TAG..header_end + 2 * (CHUNK + TAG)]);
        swapped.extend(&file[header_end..header_end + CHUNK + TAG]);
        swapped.extend(&file[header_end + 2 * (CHUNK + TAG)..]);
        assert!(matches!(opened(PASSPHRASE, &swapped), Err(SealedFileError::Open)));
    }

    #[test]
    fn a_changed_header_or_a_short_passphrase_is_refused() {
        let file = sealed(b"secret");
        let header_end = file.iter().skip(MAGIC.len()).position(|&b| b == b'\n').unwrap() + MAGIC.len() + 1;
        let header = std::str::from_utf8(&file[..header_end]).unwrap();
        let with_header = |h: String| [h.as_bytes(), &file[header_end..]].concat();
        let weaker = with_header(header.replacen("\"iterations\":3", "\"iterations\":2", 1));
        assert!(matches!(opened(PASSPHRASE, &weaker), Err(SealedFileError::Open)));
        let greedy = with_header(header.replacen("\"memory_kib\":65536", "\"memory_kib\":9999999", 1));
        assert!(matches!(opened(PASSPHRASE, &greedy), Err(SealedFileError::Header(_))));
        assert!(matches!(opened(PASSPHRASE, b"SQLite format 3\0"), Err(SealedFileError::Header(_))));
        assert!(matches!(seal("short", &mut &b"x"[..], &mut Vec::new()), Err(SealedFileError::WeakPassphrase)));
    }
}
