//! Outgoing mail: the message the domain wants sent, and the [`Mailer`] that
//! sends it (SMTP or the development outbox, in `portcullis-delivery`).

use std::future::Future;
use std::pin::Pin;

/// A message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutgoingEmail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// The one link the message is about, if any (logged by the outbox).
    pub link: Option<String>,
}

/// Delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed: {0}")]
pub struct MailError(pub String);

/// A boxed future, so mailers can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends email.
pub trait Mailer: Send + Sync + 'static {
    /// Delivers one message or says why it could not.
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> BoxFuture<'a, Result<(), MailError>>;
}
