//! Message delivery: SMTP through lettre, and the development outbox used when
//! no SMTP server is configured (each message appended as one JSON line to
//! `DATA_DIR/outbox/mail.jsonl` and logged with its link, so a developer can
//! click through sign-up without a mail server).

mod push;
mod pwned;
mod sms;
mod templates;

pub use push::{VapidKey, WebPushSender};
pub use pwned::PwnedPasswordsClient;
pub use sms::{
    SIGNATURE_HEADER, SmsOutbox, SmsProvider, SmsSettings, TwilioSender, TwilioSettings, WebhookSender, WebhookSettings, sms_sender,
    webhook_signature,
};
pub use templates::Templates;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use portcullis_core::io::BoxFuture;
use portcullis_core::messages::{MailError, Mailer, OutgoingEmail};
use tokio::io::AsyncWriteExt;

/// How to secure the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (only for a relay on the same host or a test sink).
    None,
    /// Plain connection upgraded with STARTTLS (port 587); required, not opportunistic.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The `[smtp]` settings.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// Server host name.
    pub host: String,
    /// Server port (default 587).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Transport security.
    #[serde(default)]
    pub tls: SmtpTls,
    /// Login name, if the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// Sender, like `Portcullis <no-reply@example.com>`.
    pub from: String,
}

fn default_port() -> u16 {
    587
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("from", &self.from)
            .finish()
    }
}

/// A delivery channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A setting is unusable; names the key.
    #[error("{key}: {message}")]
    Setting {
        /// Configuration key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The outbox could not be created.
    #[error("cannot create the outbox at {0}: {1}")]
    Outbox(PathBuf, std::io::Error),
}

/// Sends mail through an SMTP server.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// Builds the transport; connects lazily on first send.
    pub fn new(s: &SmtpSettings) -> Result<Self, DeliveryError> {
        let from: Mailbox = s.from.parse().map_err(|e| DeliveryError::Setting { key: "smtp.from", message: format!("{e}") })?;
        let builder = match s.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                .map_err(|e| DeliveryError::Setting { key: "smtp.host", message: e.to_string() })?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                .map_err(|e| DeliveryError::Setting { key: "smtp.host", message: e.to_string() })?,
        };
        let mut builder = builder.port(s.port).timeout(Some(Duration::from_secs(15)));
        match (&s.username, &s.password) {
            (Some(u), Some(p)) => builder = builder.credentials(Credentials::new(u.clone(), p.clone())),
            (None, None) => {}
            _ => {
                return Err(DeliveryError::Setting { key: "smtp.username", message: "username and password go together".into() });
            }
        }
        Ok(Self { transport: builder.build(), from })
    }

    async fn deliver(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let to: Mailbox = email.to.parse().map_err(|e| MailError(format!("recipient {:?}: {e}", email.to)))?;
        let builder = Message::builder().from(self.from.clone()).to(to).subject(&email.subject);
        let message = match &email.html {
            // multipart/alternative: clients that show HTML pick it, the others the text.
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text.clone(), html.clone())),
            None => builder.header(ContentType::TEXT_PLAIN).body(email.text.clone()),
        }
        .map_err(|e| MailError(e.to_string()))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| MailError(e.to_string()))
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(self.deliver(email))
    }
}

/// An append-only file of JSON lines: the development outboxes.
pub(crate) struct JsonLines {
    path: PathBuf,
    write: tokio::sync::Mutex<()>,
}

impl JsonLines {
    /// Opens `path`, creating its folder (owner only: the messages carry codes and links).
    pub(crate) fn create(path: PathBuf) -> Result<Self, DeliveryError> {
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| DeliveryError::Outbox(dir.to_owned(), e))?;
        }
        Ok(Self { path, write: tokio::sync::Mutex::new(()) })
    }

    /// Every readable line of the file at `path`, oldest first (none if it does not exist).
    pub(crate) fn read_all<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Vec<T>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Appends one line and flushes it to disk.
    pub(crate) async fn append<T: serde::Serialize>(&self, value: &T) -> Result<(), String> {
        let mut line = serde_json::to_string(value).map_err(|e| e.to_string())?;
        line.push('\n');
        // One writer at a time so concurrent messages never interleave.
        let _guard = self.write.lock().await;
        let outbox = |e: std::io::Error| format!("outbox {}: {e}", self.path.display());
        // Owner only (codes and links in it), like the database and the secrets.
        let mut file = tokio::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path).await.map_err(outbox)?;
        // tokio hands writes to a blocking thread; flush so the message is on disk before we report it sent.
        file.write_all(line.as_bytes()).await.and(file.flush().await).map_err(outbox)
    }
}

/// The development outbox.
pub struct OutboxMailer {
    file: JsonLines,
}

/// One line of the outbox file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OutboxEntry {
    /// When it was "sent" (RFC 3339).
    pub sent_at: String,
    /// The message.
    #[serde(flatten)]
    pub email: OutgoingEmail,
}

impl OutboxMailer {
    /// The outbox file inside `data_dir`.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("outbox").join("mail.jsonl")
    }

    /// Opens (creating the folder of) the outbox in `data_dir`.
    pub fn new(data_dir: &Path) -> Result<Self, DeliveryError> {
        Ok(Self { file: JsonLines::create(Self::path_in(data_dir))? })
    }

    /// Reads every message in an outbox file (for tests and tooling).
    pub fn read_all(path: &Path) -> std::io::Result<Vec<OutboxEntry>> {
        JsonLines::read_all(path)
    }

    async fn append(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let sent_at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        self.file.append(&OutboxEntry { sent_at, email: email.clone() }).await.map_err(MailError)?;
        tracing::info!(to = %email.to, subject = %email.subject, link = email.link.as_deref().unwrap_or(""), "mail written to the development outbox");
        Ok(())
    }
}

impl Mailer for OutboxMailer {
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(self.append(email))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn outbox_appends_one_json_line_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = OutboxMailer::new(dir.path()).unwrap();
        for i in 0..3 {
            let email = OutgoingEmail {
                to: format!("u{i}@example.com"),
                subject: "s".into(),
                text: "t".into(),
                html: None,
                link: Some(format!("http://x/{i}")),
            };
            outbox.send(&email).await.unwrap();
        }
        let all = OutboxMailer::read_all(&OutboxMailer::path_in(dir.path())).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].email.link.as_deref(), Some("http://x/2"));
        use std::os::unix::fs::PermissionsExt;
        let path = OutboxMailer::path_in(dir.path());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "links and codes: owner only");
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn smtp_settings_are_checked() {
        let mut s = SmtpSettings {
            host: "localhost".into(),
            port: 25,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "not an address".into(),
        };
        assert!(matches!(SmtpMailer::new(&s), Err(DeliveryError::Setting { key: "smtp.from", .. })));
        s.from = "Portcullis <no-reply@example.com>".into();
        s.username = Some("u".into());
        assert!(matches!(SmtpMailer::new(&s), Err(DeliveryError::Setting { key: "smtp.username", .. })));
        s.password = Some("p".into());
        assert!(SmtpMailer::new(&s).is_ok());
        assert!(!format!("{s:?}").contains("\"p\""), "password is redacted");
    }
}
