//! Security notices: queued in the store by the change they report (so a
//! slow mail server never slows it), delivered by a background task, retried
//! with backoff, claimed under a lease so several processes send each once.

use std::future::Future;

use crate::accounts::{Accounts, capability};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::mail::Message;
use crate::store::Stores;
use crate::user::User;

capability!(
    /// Delivery of queued security notices.
    Notices,
    notices
);

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

/// Notices taken from the queue per round.
const NOTICE_BATCH: u32 = 20;
/// How long a claimed notice stays hidden from other senders (seconds).
const NOTICE_LEASE_SECONDS: i64 = 300;
/// Delivery attempts before a notice is given up (logged).
const NOTICE_ATTEMPTS: u32 = 8;

/// When to try a notice again after `attempts` failures: one minute, doubling, at most an hour.
fn notice_backoff(attempts: u32) -> i64 {
    (60_i64 << attempts.saturating_sub(1).min(6)).min(3600)
}

impl<S: Stores> Accounts<S> {
    /// Queues a security notice for the delivery task; a failure is logged,
    /// never fatal to the change it reports.
    pub(crate) async fn notify(&self, user: &User, message: Message, now: UnixTime) {
        match self.store.enqueue_notice(user.email.as_str(), &message, now).await {
            Ok(()) => self.notices_queued.notify_one(),
            Err(e) => tracing::error!(error = %e, user = %user.id, kind = message.kind(), "could not queue a security notice"),
        }
    }
}

impl<S: Stores> Notices<'_, S> {
    /// Signalled whenever a notice is queued, so the delivery task wakes at once.
    pub fn notices_queued(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.notices_queued.clone()
    }

    /// Sends the security notices that are due; returns how many were sent.
    /// A failed delivery is retried with a growing delay and given up (and
    /// logged) after a few attempts; the change it reports is never undone.
    pub async fn deliver_notices(&self, now: UnixTime) -> Result<usize, AccountError> {
        let mut sent = 0;
        loop {
            let batch = self.store.claim_notices(now, now + NOTICE_LEASE_SECONDS, NOTICE_BATCH).await?;
            if batch.is_empty() {
                return Ok(sent);
            }
            for notice in batch {
                let message: Message = match serde_json::from_str(&notice.message) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!(error = %e, id = notice.id, "dropping an unreadable queued notice");
                        self.store.remove_notice(notice.id).await?;
                        continue;
                    }
                };
                match self.messenger.email(&notice.recipient, &message).await {
                    Ok(()) => {
                        self.store.remove_notice(notice.id).await?;
                        sent += 1;
                    }
                    Err(e) if notice.attempts >= NOTICE_ATTEMPTS => {
                        tracing::error!(error = %e, kind = message.kind(), attempts = notice.attempts, "giving up on a security notice");
                        self.store.remove_notice(notice.id).await?;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, kind = message.kind(), attempts = notice.attempts, "security notice not sent; will retry");
                        self.store.retry_notice(notice.id, notice.attempts, now + notice_backoff(notice.attempts)).await?;
                    }
                }
            }
        }
    }
}
