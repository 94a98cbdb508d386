//! Security notices: queued in the store by the change they report (so a
//! slow mail server never slows it), delivered by a background task, retried
//! with backoff, claimed under a lease so several processes send each once.

use std::future::Future;

use data_encoding::BASE64URL_NOPAD;

use crate::Language;
use crate::error::StoreError;
use crate::messages::Message;
use crate::secrets::SecretBox;

mod delivery;

pub use delivery::Notices;

/// A security notice waiting to be emailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedNotice {
    /// Queue position.
    pub id: i64,
    /// Address.
    pub recipient: String,
    /// What to say: a [`Message`] as [`seal_notice`] keeps it (opened by the
    /// sender, so one bad row cannot stall the queue).
    pub message: String,
    /// Delivery attempts so far, including the one this claim is for.
    pub attempts: u32,
}

/// The queue of security notices: written in the request that causes the
/// notice, emptied by a background task (see [`Notices::deliver_notices`]).
pub trait NoticeStore: Clone + Send + Sync + 'static {
    /// Adds a notice, due now: `payload` is the message as [`seal_notice`] keeps it.
    fn enqueue_notice(
        &self,
        recipient: &str,
        payload: &str,
        now: crate::clock::UnixTime,
    ) -> impl Future<Output = crate::io::StoreResult<()>> + Send;
    /// Takes up to `limit` due notices and hides them until `lease_until`
    /// (so another server process does not send them too; a process that
    /// dies mid-delivery leaves them to be retried then).
    fn claim_notices(
        &self,
        now: crate::clock::UnixTime,
        lease_until: crate::clock::UnixTime,
        limit: u32,
    ) -> impl Future<Output = crate::io::StoreResult<Vec<QueuedNotice>>> + Send;
    /// Removes a notice (sent, or given up on).
    fn remove_notice(&self, id: i64) -> impl Future<Output = crate::io::StoreResult<()>> + Send;
    /// Makes a notice due again at `not_before`, unless another sender has
    /// claimed it since this sender's claim (attempt `attempts`).
    fn retry_notice(
        &self,
        id: i64,
        attempts: u32,
        not_before: crate::clock::UnixTime,
    ) -> impl Future<Output = crate::io::StoreResult<()>> + Send;
}

/// When to try a notice again after `attempts` failures: one minute, doubling, at most an hour.
pub(crate) fn notice_backoff(attempts: u32) -> i64 {
    (60_i64 << attempts.saturating_sub(1).min(6)).min(3600)
}

/// Sealing context of queued messages.
const NOTICE_CONTEXT: &str = "queued-notice";
/// Marks a sealed payload (rows queued before sealing are plain JSON).
const SEALED: &str = "sealed:";

/// A queued message and the language it is to be written in.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    /// A language no longer shipped is read as English: the notice still goes out.
    #[serde(deserialize_with = "shipped_or_english")]
    language: Language,
    message: Message,
}

fn shipped_or_english<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Language, D::Error> {
    let tag = <String as serde::Deserialize>::deserialize(d)?;
    Ok(Language::parse(&tag).unwrap_or_default())
}

/// A message as the queue keeps it: its JSON (with the recipient's language)
/// sealed with the at-rest key, since some carry a one-time code or link (a
/// sign-in code, a reset link).
pub fn seal_notice(sealer: &SecretBox, message: &Message, language: Language) -> Result<String, StoreError> {
    let envelope = Envelope { language, message: message.clone() };
    let json = serde_json::to_vec(&envelope).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(format!("{SEALED}{}", BASE64URL_NOPAD.encode(&sealer.seal(NOTICE_CONTEXT, &json))))
}

/// The message of a queued payload and its language; `None` if it cannot be
/// read (dropped, logged by the caller). Rows queued before languages are
/// bare messages, sent in English.
pub fn open_notice(sealer: &SecretBox, payload: &str) -> Option<(Message, Language)> {
    let json = match payload.strip_prefix(SEALED) {
        Some(sealed) => sealer.open(NOTICE_CONTEXT, &BASE64URL_NOPAD.decode(sealed.as_bytes()).ok()?).ok()?,
        None => zeroize::Zeroizing::new(payload.as_bytes().to_vec()),
    };
    serde_json::from_slice::<Envelope>(&json)
        .map(|e| (e.message, e.language))
        .or_else(|_| serde_json::from_slice::<Message>(&json).map(|m| (m, Language::En)))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_bytes(sealer: &SecretBox, json: &serde_json::Value) -> String {
        format!("{SEALED}{}", BASE64URL_NOPAD.encode(&sealer.seal(NOTICE_CONTEXT, json.to_string().as_bytes())))
    }

    #[test]
    fn a_queued_message_is_sealed_and_only_the_key_opens_it() {
        let sealer = SecretBox::new([7; 32]);
        let message = Message::SignInCode { code: "123456".into(), minutes: 5 };
        let payload = seal_notice(&sealer, &message, Language::De).unwrap();
        assert!(!payload.contains("123456"), "the code is not readable at rest: {payload}");
        assert_eq!(open_notice(&sealer, &payload), Some((message.clone(), Language::De)));
        assert_eq!(open_notice(&SecretBox::new([8; 32]), &payload), None, "another key opens nothing");
        let plain = serde_json::to_string(&message).unwrap();
        assert_eq!(
            open_notice(&sealer, &plain),
            Some((message.clone(), Language::En)),
            "rows queued before sealing still go out, in English"
        );
        let gone = seal_bytes(&sealer, &serde_json::json!({ "language": "tlh", "message": message }));
        assert_eq!(open_notice(&sealer, &gone), Some((message, Language::En)), "a language no longer shipped is read as English");
    }

    #[test]
    fn a_failed_notice_waits_a_minute_then_twice_as_long_each_time_up_to_an_hour() {
        let waits: Vec<i64> = (1..=9).map(notice_backoff).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }
}
