//! Security notices: queued in the store by the change they report (so a
//! slow mail server never slows it), delivered by a background task, retried
//! with backoff, claimed under a lease so several processes send each once.

use std::future::Future;

use crate::messages::Message;

mod delivery;

pub use delivery::Notices;

/// A security notice waiting to be emailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedNotice {
    /// Queue position.
    pub id: i64,
    /// Address.
    pub recipient: String,
    /// What to say: a [`Message`] as JSON (parsed by the sender, so one bad row cannot stall the queue).
    pub message: String,
    /// Delivery attempts so far, including the one this claim is for.
    pub attempts: u32,
}

/// The queue of security notices: written in the request that causes the
/// notice, emptied by a background task (see [`Notices::deliver_notices`]).
pub trait NoticeStore: Clone + Send + Sync + 'static {
    /// Adds a notice, due now.
    fn enqueue_notice(
        &self,
        recipient: &str,
        message: &Message,
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

#[cfg(test)]
mod tests {
    use super::notice_backoff;

    #[test]
    fn a_failed_notice_waits_a_minute_then_twice_as_long_each_time_up_to_an_hour() {
        let waits: Vec<i64> = (1..=9).map(notice_backoff).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }
}
