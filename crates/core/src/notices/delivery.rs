//! Notices going out: queued by the change they report ([`Accounts::notify`]),
//! sent by the background task ([`Notices::deliver_notices`]).

use super::notice_backoff;
use crate::account_store::Stores;
use crate::accounts::{Accounts, capability};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::messages::Message;
use crate::user::User;

capability!(
    /// Delivery of queued security notices.
    Notices,
    notices
);

/// Notices taken from the queue per round.
const NOTICE_BATCH: u32 = 20;
/// How long a claimed notice stays hidden from other senders (seconds).
const NOTICE_LEASE_SECONDS: i64 = 300;
/// Delivery attempts before a notice is given up (logged).
const NOTICE_ATTEMPTS: u32 = 8;

impl<S: Stores> Accounts<S> {
    /// Queues a security notice for the delivery task; a failure is logged,
    /// never fatal to the change it reports.
    pub(crate) async fn notify(&self, user: &User, message: Message, now: UnixTime) {
        let queued = match super::seal_notice(&self.keys.sealer, &message, user.language.unwrap_or_default()) {
            Ok(payload) => self.store.enqueue_notice(user.email.as_str(), &payload, now).await,
            Err(e) => Err(e),
        };
        match queued {
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
                let (message, language): (Message, _) = match super::open_notice(&self.keys.sealer, &notice.message) {
                    Some(m) => m,
                    None => {
                        tracing::error!(id = notice.id, "dropping an unreadable queued notice");
                        self.store.remove_notice(notice.id).await?;
                        continue;
                    }
                };
                match self.messenger.email(&notice.recipient, language, &message).await {
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
