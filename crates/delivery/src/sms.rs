//! Text-message delivery: a Twilio-compatible REST API, a signed webhook, and
//! the development outbox (`DATA_DIR/outbox/sms.jsonl`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{DeliveryError, JsonLines};
use hmac::{Hmac, Mac};
use portcullis_core::io::BoxFuture;
use portcullis_core::sms::{OutgoingSms, SmsError, SmsSender};
use sha2::Sha256;

/// `[sms]`: which gateway sends text messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    /// `twilio`, `webhook` or `outbox` (the default: nothing leaves the machine).
    #[serde(default)]
    pub provider: SmsProvider,
    /// `[sms.twilio]`
    #[serde(default)]
    pub twilio: Option<TwilioSettings>,
    /// `[sms.webhook]`
    #[serde(default)]
    pub webhook: Option<WebhookSettings>,
}

/// The gateway kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    /// Twilio's Messages API (or a compatible one at another `base_url`).
    Twilio,
    /// A JSON POST signed with HMAC-SHA256.
    Webhook,
    /// The development outbox.
    #[default]
    Outbox,
}

/// `[sms.twilio]`
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// API root, `https://api.twilio.com` unless a compatible provider is used.
    #[serde(default = "twilio_base_url")]
    pub base_url: String,
    /// Account SID (`AC…`), also the Basic-auth user name.
    pub account_sid: String,
    /// Auth token, the Basic-auth password.
    pub auth_token: String,
    /// Sender number (E.164); or use `messaging_service_sid`.
    #[serde(default)]
    pub from: Option<String>,
    /// Messaging service (`MG…`) instead of `from`.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
}

fn twilio_base_url() -> String {
    "https://api.twilio.com".into()
}

impl std::fmt::Debug for TwilioSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSettings")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .finish_non_exhaustive()
    }
}

/// `[sms.webhook]`
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where to POST.
    pub url: String,
    /// Shared secret for the signature header.
    pub secret: String,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings").field("url", &self.url).finish_non_exhaustive()
    }
}

/// Builds the configured sender; `data_dir` holds the outbox.
pub fn sms_sender(s: &SmsSettings, data_dir: &Path) -> Result<Box<dyn SmsSender>, DeliveryError> {
    let missing = |key| DeliveryError::Setting { key, message: "missing for this provider".into() };
    Ok(match s.provider {
        SmsProvider::Twilio => Box::new(TwilioSender::new(s.twilio.clone().ok_or(missing("sms.twilio"))?)?),
        SmsProvider::Webhook => Box::new(WebhookSender::new(s.webhook.clone().ok_or(missing("sms.webhook"))?)?),
        SmsProvider::Outbox => Box::new(SmsOutbox::new(data_dir)?),
    })
}

fn http_client() -> Result<reqwest::Client, DeliveryError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| DeliveryError::Setting { key: "sms", message: format!("HTTP client: {e}") })
}

/// The first part of an error body, for the log (gateways explain refusals there).
async fn refusal(r: reqwest::Response) -> SmsError {
    let status = r.status();
    let body: String = r.text().await.unwrap_or_default().chars().take(300).collect();
    SmsError(format!("gateway answered {status}: {body}"))
}

/// Twilio's Messages API: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
/// form-encoded `To`, `From` or `MessagingServiceSid`, `Body`, HTTP Basic auth.
pub struct TwilioSender {
    http: reqwest::Client,
    settings: TwilioSettings,
    url: String,
}

impl TwilioSender {
    /// Checks the settings; sends nothing yet.
    pub fn new(settings: TwilioSettings) -> Result<Self, DeliveryError> {
        if settings.from.is_some() == settings.messaging_service_sid.is_some() {
            return Err(DeliveryError::Setting { key: "sms.twilio.from", message: "set either from or messaging_service_sid".into() });
        }
        let base = url::Url::parse(&settings.base_url)
            .map_err(|e| DeliveryError::Setting { key: "sms.twilio.base_url", message: e.to_string() })?;
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", base.as_str().trim_end_matches('/'), settings.account_sid);
        Ok(Self { http: http_client()?, settings, url })
    }

    async fn deliver(&self, sms: &OutgoingSms) -> Result<(), SmsError> {
        let sender = match (&self.settings.from, &self.settings.messaging_service_sid) {
            (Some(from), _) => ("From", from.as_str()),
            (None, Some(service)) => ("MessagingServiceSid", service.as_str()),
            (None, None) => return Err(SmsError("no sender configured".into())),
        };
        let form = [("To", sms.to.as_str()), sender, ("Body", sms.body.as_str())];
        let r = self
            .http
            .post(&self.url)
            .basic_auth(&self.settings.account_sid, Some(&self.settings.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| SmsError(format!("gateway unreachable: {e}")))?;
        if r.status().is_success() { Ok(()) } else { Err(refusal(r).await) }
    }
}

impl SmsSender for TwilioSender {
    fn send<'a>(&'a self, sms: &'a OutgoingSms) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(self.deliver(sms))
    }
}

/// Name of the webhook's signature header: `t=UNIX_SECONDS,v1=HEX`, where HEX
/// is HMAC-SHA256 with the shared secret over `UNIX_SECONDS.BODY`. The time
/// is signed so a receiver can refuse replays of an old request.
pub const SIGNATURE_HEADER: &str = "X-Portcullis-Signature";

/// The signature header value for `body` sent at `timestamp`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("t={timestamp},v1={}", data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()))
}

/// A JSON POST `{"to": "+…", "body": "…"}` to the operator's endpoint.
pub struct WebhookSender {
    http: reqwest::Client,
    settings: WebhookSettings,
}

impl WebhookSender {
    /// Checks the settings; sends nothing yet.
    pub fn new(settings: WebhookSettings) -> Result<Self, DeliveryError> {
        url::Url::parse(&settings.url).map_err(|e| DeliveryError::Setting { key: "sms.webhook.url", message: e.to_string() })?;
        if settings.secret.len() < 16 {
            return Err(DeliveryError::Setting { key: "sms.webhook.secret", message: "use at least 16 characters".into() });
        }
        Ok(Self { http: http_client()?, settings })
    }

    async fn deliver(&self, sms: &OutgoingSms) -> Result<(), SmsError> {
        let body =
            serde_json::to_vec(&serde_json::json!({ "to": sms.to.as_str(), "body": sms.body })).map_err(|e| SmsError(e.to_string()))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let r = self
            .http
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, webhook_signature(&self.settings.secret, now, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| SmsError(format!("webhook unreachable: {e}")))?;
        if r.status().is_success() { Ok(()) } else { Err(refusal(r).await) }
    }
}

impl SmsSender for WebhookSender {
    fn send<'a>(&'a self, sms: &'a OutgoingSms) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(self.deliver(sms))
    }
}

/// The development outbox for text messages.
pub struct SmsOutbox {
    file: JsonLines,
}

impl SmsOutbox {
    /// The outbox file inside `data_dir`.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("outbox").join("sms.jsonl")
    }

    /// Opens (creating the folder of) the outbox in `data_dir`.
    pub fn new(data_dir: &Path) -> Result<Self, DeliveryError> {
        Ok(Self { file: JsonLines::create(Self::path_in(data_dir))? })
    }

    /// Every message in an outbox file, oldest first.
    pub fn read_all(path: &Path) -> std::io::Result<Vec<OutgoingSms>> {
        JsonLines::read_all(path)
    }

    async fn append(&self, sms: &OutgoingSms) -> Result<(), SmsError> {
        self.file.append(sms).await.map_err(SmsError)?;
        tracing::info!(to = %sms.to.masked(), "text message written to the development outbox");
        Ok(())
    }
}

impl SmsSender for SmsOutbox {
    fn send<'a>(&'a self, sms: &'a OutgoingSms) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(self.append(sms))
    }
}
