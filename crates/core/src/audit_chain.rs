//! The audit log as a tamper-evident chain.
//!
//! Each event, once sealed, has a place (`seq`: 1, 2, 3, … with no gap) and
//! a link: an HMAC-SHA256, under the server's MAC key (from
//! `DATA_DIR/secrets/`, which the database does not hold), over the previous
//! link and every column of the event as stored. Someone who can write the
//! database but not read the secrets cannot edit, insert, reorder or delete a
//! sealed event without breaking the chain at that place, which
//! [`ChainVerifier`] reports.
//!
//! Events are written unsealed (a sign-in's statement stays one statement)
//! and sealed shortly after, in `id` order, by one sealer at a time
//! ([`AuditStore::seal_audit_events`](crate::audit::AuditStore::seal_audit_events)),
//! so several nodes write one chain. What the chain cannot show: an event
//! written straight into the database before it is sealed (it is sealed as
//! if genuine), and the newest events deleted together with nothing after
//! them; compare the head `portcullis audit verify` prints with one kept
//! elsewhere. Retention deletes the oldest events and moves the
//! [`ChainAnchor`] on, so the rest stays verifiable.

use crate::clock::UnixTime;
use crate::secrets::MacKey;

/// The MAC purpose of chain links (no other tag of the key verifies as one).
const PURPOSE: &str = "audit-chain";

/// An audit event's columns exactly as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEvent {
    /// Place in the chain (`None` until sealed).
    pub seq: Option<i64>,
    /// Row id (increasing in insert order).
    pub id: i64,
    /// When.
    pub at: UnixTime,
    /// The event kind, as stored.
    pub kind: String,
    /// The account, as stored.
    pub user_id: Option<String>,
    /// The application.
    pub client_id: Option<String>,
    /// Source address.
    pub ip: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// The detail JSON, as stored (its text, not a re-serialisation).
    pub detail: String,
    /// Its link (`None` until sealed).
    pub chain: Option<String>,
}

impl ChainedEvent {
    /// The link this event gets at place `seq` after the link `prev` ("" for the first).
    pub fn link(&self, key: &MacKey, seq: i64, prev: &str) -> String {
        let fields = serde_json::json!([
            prev,
            seq,
            self.id,
            self.at,
            self.kind,
            self.user_id,
            self.client_id,
            self.ip,
            self.user_agent,
            self.detail
        ]);
        key.tag(PURPOSE, fields.to_string().as_bytes())
    }
}

/// Where the chain starts after retention deleted its beginning: the place
/// and link of the last deleted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainAnchor {
    /// The last deleted event's place.
    pub seq: i64,
    /// Its link.
    pub chain: String,
}

/// The end of the chain: the next event's place and the link it follows.
pub fn next_after(head: Option<(i64, String)>) -> (i64, String) {
    head.map_or((1, String::new()), |(seq, chain)| (seq + 1, chain))
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    /// The place where the chain stops holding.
    pub seq: i64,
    /// The event found there, if any.
    pub event_id: Option<i64>,
    /// What is wrong, in words.
    pub reason: String,
}

/// Checks sealed events in chain order, page by page.
#[derive(Debug)]
pub struct ChainVerifier {
    expected: i64,
    prev: String,
    checked: u64,
}

impl ChainVerifier {
    /// A verifier for the chain starting after `anchor` (from place 1 without one).
    pub fn new(anchor: Option<ChainAnchor>) -> Self {
        let (expected, prev) = next_after(anchor.map(|a| (a.seq, a.chain)));
        Self { expected, prev, checked: 0 }
    }

    /// The place after the last event checked (where the next page starts).
    pub fn next_seq(&self) -> i64 {
        self.expected
    }

    /// Sealed events checked so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The last link checked (the head, once every event was checked).
    pub fn head(&self) -> &str {
        &self.prev
    }

    /// Checks the next sealed event (events must come in `seq` order).
    pub fn check(&mut self, key: &MacKey, event: &ChainedEvent) -> Result<(), ChainBreak> {
        let broken = |reason: String| ChainBreak { seq: self.expected, event_id: Some(event.id), reason };
        let (Some(seq), Some(chain)) = (event.seq, event.chain.as_deref()) else {
            return Err(broken("an event without its place or link among the sealed ones".into()));
        };
        if seq != self.expected {
            return Err(ChainBreak {
                seq: self.expected,
                event_id: None,
                reason: format!(
                    "place {} is missing (deleted, or the chain begins elsewhere); the next event found is at {seq}",
                    self.expected
                ),
            });
        }
        let expected = event.link(key, seq, &self.prev);
        if !crate::secrets::constant_time_eq(expected.as_bytes(), chain.as_bytes()) {
            return Err(broken(format!(
                "event {} does not match its link: it was changed, inserted or moved, or an event before it was",
                event.id
            )));
        }
        self.prev = chain.to_owned();
        self.expected += 1;
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MacKey {
        MacKey::new([7; 32])
    }

    fn event(id: i64, detail: &str) -> ChainedEvent {
        ChainedEvent {
            seq: None,
            id,
            at: 1_000 + id,
            kind: "sign_in_succeeded".into(),
            user_id: Some("u1".into()),
            client_id: None,
            ip: Some("192.0.2.1".into()),
            user_agent: None,
            detail: detail.into(),
            chain: None,
        }
    }

    /// Seals events in order after `anchor`, as the sealer does.
    fn sealed(events: Vec<ChainedEvent>, anchor: Option<ChainAnchor>) -> Vec<ChainedEvent> {
        let (mut seq, mut prev) = next_after(anchor.map(|a| (a.seq, a.chain)));
        events
            .into_iter()
            .map(|mut e| {
                let link = e.link(&key(), seq, &prev);
                (e.seq, e.chain) = (Some(seq), Some(link.clone()));
                (seq, prev) = (seq + 1, link);
                e
            })
            .collect()
    }

    fn verify(events: &[ChainedEvent], anchor: Option<ChainAnchor>) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::new(anchor);
        for e in events {
            v.check(&key(), e)?;
        }
        Ok(v.checked())
    }

    fn five() -> Vec<ChainedEvent> {
        sealed((1..=5).map(|i| event(i, "{}")).collect(), None)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(verify(&five(), None), Ok(5));
    }

    #[test]
    fn an_edited_event_breaks_the_chain_at_its_place() {
        for field in 0..4 {
            let mut chain = five();
            match field {
                0 => chain[2].detail = r#"{"method":"otp"}"#.into(),
                1 => chain[2].at += 1,
                2 => chain[2].ip = None,
                _ => chain[2].kind = "sign_in_failed".into(),
            }
            let broken = verify(&chain, None).unwrap_err();
            assert_eq!((broken.seq, broken.event_id), (3, Some(3)), "{broken:?}");
        }
    }

    #[test]
    fn a_deleted_event_is_a_missing_place() {
        let mut chain = five();
        chain.remove(1);
        let broken = verify(&chain, None).unwrap_err();
        assert_eq!((broken.seq, broken.event_id), (2, None));
        assert!(broken.reason.contains("place 2 is missing"), "{}", broken.reason);
    }

    #[test]
    fn an_inserted_or_swapped_event_breaks_the_chain() {
        // A forged event at a free place after the head, with a made-up link.
        let mut chain = five();
        let mut forged = event(6, "{}");
        (forged.seq, forged.chain) = (Some(6), Some("x".repeat(43)));
        chain.push(forged);
        assert_eq!(verify(&chain, None).unwrap_err().seq, 6);
        // Another key's valid-looking chain is not ours.
        let mut other = five();
        other[4].chain = Some(other[4].link(&MacKey::new([8; 32]), 5, other[3].chain.as_deref().unwrap()));
        assert_eq!(verify(&other, None).unwrap_err().seq, 5);
        // Two events swapped, places and all.
        let mut swapped = five();
        swapped.swap(1, 2);
        (swapped[1].seq, swapped[2].seq) = (Some(2), Some(3));
        assert_eq!(verify(&swapped, None).unwrap_err().seq, 2);
    }

    #[test]
    fn after_retention_the_chain_verifies_from_its_anchor_and_not_without_it() {
        let chain = five();
        let anchor = ChainAnchor { seq: 2, chain: chain[1].chain.clone().unwrap() };
        assert_eq!(verify(&chain[2..], Some(anchor.clone())), Ok(3));
        assert_eq!(verify(&chain[2..], None).unwrap_err().seq, 1, "without the anchor, the beginning is missing");
        // The first kept event deleted as well: its place is missing.
        assert_eq!(verify(&chain[3..], Some(anchor)).unwrap_err().seq, 3);
        let forged_anchor = ChainAnchor { seq: 2, chain: "y".repeat(43) };
        assert_eq!(verify(&chain[2..], Some(forged_anchor)).unwrap_err().seq, 3);
    }
}
