//! Breached passwords (NIST SP 800-63B §5.1.1.2: refuse passwords "obtained
//! from previous breach corpuses"; OWASP ASVS 4.0 V2.1.7). Offline: a bundled
//! list of the 100,000 most common breached passwords (`data/README.md` names
//! its source). Online, when the operator opts in: the k-anonymity range API
//! of Pwned Passwords, which is sent only the first 5 hex characters of the
//! password's SHA-1 and answers padded (`Add-Padding`), and which fails open:
//! an unreachable service refuses nobody's password, with a log line.

use std::sync::Arc;

use sha1::{Digest, Sha1};

/// The bundled list: the first 4 bytes of each password's SHA-1, sorted, big-endian.
static BUNDLED: &[u8] = include_bytes!("../data/common-passwords.bin");

/// How new passwords are checked against breaches (`[password] breached_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BreachedCheck {
    /// Not at all.
    Off,
    /// Against the bundled list.
    #[default]
    Offline,
    /// Against the bundled list, then the range API.
    Online,
}

impl BreachedCheck {
    /// Parses the setting.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "offline" => Some(Self::Offline),
            "online" => Some(Self::Online),
            _ => None,
        }
    }
}

/// The range API of a Pwned Passwords service: `GET {base}/{prefix}` answers
/// the hash suffixes (35 hex characters) that share the 5-character prefix,
/// one `SUFFIX:COUNT` a line (padding lines count 0).
pub trait PwnedRange: Send + Sync {
    /// The body of the range answer for `prefix` (5 uppercase hex characters).
    fn range(&self, prefix: &str) -> crate::io::BoxFuture<'_, Result<String, String>>;
}

/// Tells whether a password is known from breaches.
#[derive(Clone, Default)]
pub struct BreachedPasswords {
    check: BreachedCheck,
    range: Option<Arc<dyn PwnedRange>>,
}

impl std::fmt::Debug for BreachedPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreachedPasswords").field("check", &self.check).field("online", &self.range.is_some()).finish()
    }
}

impl BreachedPasswords {
    /// A check of kind `check`; `Online` needs `range`, and without it checks offline only.
    pub fn new(check: BreachedCheck, range: Option<Arc<dyn PwnedRange>>) -> Self {
        Self { check, range: range.filter(|_| check == BreachedCheck::Online) }
    }

    /// Whether `password` is known from breaches. The online check fails
    /// open: an error or an unreadable answer counts as "not known".
    pub async fn is_breached(&self, password: &str) -> bool {
        if self.check == BreachedCheck::Off {
            return false;
        }
        let digest = Sha1::digest(password.as_bytes());
        if in_bundled_list(&digest) {
            return true;
        }
        let Some(range) = &self.range else { return false };
        let hex = data_encoding::HEXUPPER.encode(&digest);
        let (prefix, suffix) = hex.split_at(5);
        match range.range(prefix).await {
            Ok(body) => suffix_listed(&body, suffix),
            Err(e) => {
                tracing::warn!(error = %e, "breached-password range API unreachable: the password was not checked online");
                false
            }
        }
    }
}

/// Whether the SHA-1 `digest`'s first 4 bytes are in the bundled list.
fn in_bundled_list(digest: &[u8]) -> bool {
    let Some(print) = digest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else { return false };
    let count = BUNDLED.len() / 4;
    let at = |i: usize| BUNDLED.get(i * 4..i * 4 + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).unwrap_or([0xff; 4]);
    let (mut low, mut high) = (0, count);
    while low < high {
        let mid = low + (high - low) / 2;
        match at(mid).cmp(&print) {
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// Whether a range answer lists `suffix` with a count above 0 (padding lines count 0).
fn suffix_listed(body: &str, suffix: &str) -> bool {
    body.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .any(|(s, count)| s.eq_ignore_ascii_case(suffix) && count.trim().parse::<u64>().is_ok_and(|n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bundled_list_knows_common_breached_passwords_and_not_others() {
        let offline = BreachedPasswords::new(BreachedCheck::Offline, None);
        // From the top, the middle and the end of the list.
        for common in ["password", "12345678", "titleist", "01041984", "tron8766"] {
            assert!(offline.is_breached(common).await, "{common}");
        }
        for fresh in ["tangerine-Quiver-87-lantern", "obsidian-Harbor-42-meadow"] {
            assert!(!offline.is_breached(fresh).await, "{fresh}");
        }
        assert!(!BreachedPasswords::new(BreachedCheck::Off, None).is_breached("password").await);
        assert_eq!(BUNDLED.len() % 4, 0);
        assert!(BUNDLED.chunks(4).zip(BUNDLED.chunks(4).skip(1)).all(|(a, b)| a < b), "sorted, for the binary search");
    }

    #[test]
    fn a_range_answer_counts_only_listed_suffixes_with_a_count() {
        let body =
            "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n011053FD0102E94D6AE2F8B83D76FAF94F6:13\r\n";
        assert!(suffix_listed(body, "0018a45c4d1def81644b54ab7f969b88d65"));
        assert!(!suffix_listed(body, "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"), "padding");
        assert!(!suffix_listed(body, "FFFFF6E8FA6EECAD2A3AA415EEC418D38EC"));
        assert!(!suffix_listed("garbage", "0018A45C4D1DEF81644B54AB7F969B88D65"));
    }
}
