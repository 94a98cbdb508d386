//! Sign-in approvals on a phone: the companion web app (`/authenticator`)
//! holds a non-extractable P-256 key made with WebCrypto; a sign-in sends a
//! request to it by Web Push (RFC 8030, through [`PushSender`]); the user
//! picks, among three, the two-digit number the sign-in page shows (number
//! matching, against push fatigue) and the companion signs the decision.
//!
//! A phone is a credential of kind [`FactorKind::PushDevice`]: its sealed
//! secret holds the device's public key and push subscription
//! ([`PushDevice`]); its `public_key_id` is `push:` and the public key, so a
//! signed call names its device by the key that signs it. While the
//! companion is being paired, `public_key_id` holds `pairing:` and the
//! digest of the one-time pairing token.
//!
//! What the companion calls (listing, answering) is checked in
//! [`crate::sign_in::SignIn`]'s approvals; this module holds the factor,
//! the signed texts and the rules (lifetimes, limits, the pause after denials).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    Credential, Enrolled, EnrollmentPrompt, FactorContext, FactorKey, FactorKind, FactorResult, MfaStore, NewCredential,
    PublicKeyChallenge, SecondFactor, Verification, seal_context,
};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::io::BoxFuture;
use crate::rate_limit::SlidingQuota;
use crate::secrets::{random_token, token_digest};
use crate::user::{User, UserId};

/// How long a sign-in request can be answered (seconds).
pub const REQUEST_SECONDS: i64 = 120;
/// How long a pairing link works (seconds); it works once.
pub const PAIRING_SECONDS: i64 = 300;
/// How far a signed listing call's time may be from the server's (seconds).
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// How long after its two minutes an approval given in time can still be
/// taken by its sign-in (the waiting page asks every two seconds).
pub const TAKE_GRACE_SECONDS: i64 = 60;
/// At most this many phones of one account are pushed to per request.
pub const MAX_PHONES_PUSHED: usize = 10;
/// Push-fatigue limits: requests per user per minute, and per hour.
pub const PUSHES_PER_MINUTE: u32 = 3;
/// See [`PUSHES_PER_MINUTE`].
pub const PUSHES_PER_HOUR: u32 = 10;
/// Denials within [`PAUSE_SECONDS`] that pause push for [`PAUSE_SECONDS`].
pub const DENIALS_TO_PAUSE: usize = 3;
/// See [`DENIALS_TO_PAUSE`].
pub const PAUSE_SECONDS: i64 = 3600;

const PAIRING_PREFIX: &str = "pairing:";
const DEVICE_PREFIX: &str = "push:";

/// Push approval on this server: the transport, and where the companion is.
pub struct PushService {
    /// Delivers Web Push messages.
    pub sender: Arc<dyn PushSender>,
    /// The companion's page (`{issuer}/authenticator`).
    pub companion_url: String,
    /// The origin the companion runs at (the issuer's), which every signed text names.
    pub origin: String,
}

/// A Web Push subscription, as `PushSubscription.toJSON()` gives it (keys base64url).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    /// The push service's URL for this subscription.
    pub endpoint: String,
    /// The browser's P-256 public key for message encryption (RFC 8291), uncompressed, base64url.
    pub p256dh: String,
    /// The 16-byte authentication secret (RFC 8291), base64url.
    pub auth: String,
}

/// How a push service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushDelivery {
    /// Accepted for delivery (RFC 8030 §5: `201 Created`).
    Accepted,
    /// The subscription no longer exists (`404`/`410`): the companion must subscribe again.
    Gone,
}

/// A push could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("push delivery failed: {0}")]
pub struct PushError(pub String);

/// Delivers a Web Push message: encrypted for the subscription (RFC 8291),
/// signed for the push service (VAPID, RFC 8292).
pub trait PushSender: Send + Sync {
    /// Sends `payload` to `to`; the push service keeps it for `ttl_seconds` at most.
    fn send<'a>(&'a self, to: &'a PushSubscription, payload: &'a [u8], ttl_seconds: u32) -> BoxFuture<'a, Result<PushDelivery, PushError>>;
}

/// What a phone's credential holds, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushDevice {
    /// The device key: an uncompressed P-256 point, base64url.
    pub public_key: String,
    /// Where pushes go; `None` when the phone gave none (notifications
    /// refused, no push service): the companion then finds requests when opened.
    pub subscription: Option<PushSubscription>,
}

/// What a push credential's sealed secret holds (a [`PushDevice`], or a
/// [`PairingSetup`] while pairing), read back.
fn open_sealed<S, T: serde::de::DeserializeOwned>(ctx: &FactorContext<'_, S>, c: &Credential) -> Option<T> {
    let bytes = ctx.sealer.open(&seal_context(&c.id), &c.sealed_secret).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `value` sealed as credential `id`'s secret.
fn sealed<S>(ctx: &FactorContext<'_, S>, id: &str, value: &impl Serialize) -> Vec<u8> {
    ctx.sealer.seal(&seal_context(id), &serde_json::to_vec(value).unwrap_or_default())
}

impl PushDevice {
    /// The device of a phone credential.
    pub fn of<S>(ctx: &FactorContext<'_, S>, c: &Credential) -> Option<Self> {
        open_sealed(ctx, c)
    }

    /// The sealed form, for credential `id`.
    pub fn sealed<S>(&self, ctx: &FactorContext<'_, S>, id: &str) -> Vec<u8> {
        sealed(ctx, id, self)
    }
}

/// What a pairing's unconfirmed credential holds, sealed: the account's
/// `security_epoch` when the link was made, so a link made before the
/// account's sign-ins were ended (signing out everywhere, a password change
/// or reset, an MFA reset) pairs nothing afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingSetup {
    /// The account's epoch then.
    pub security_epoch: i64,
}

impl PairingSetup {
    /// The setup of a pairing credential.
    pub fn of<S>(ctx: &FactorContext<'_, S>, c: &Credential) -> Option<Self> {
        open_sealed(ctx, c)
    }
}

/// The `public_key_id` a paired phone's credential is found by.
pub fn device_key_id(public_key: &str) -> String {
    format!("{DEVICE_PREFIX}{public_key}")
}

/// The `public_key_id` of a phone being paired with `token`.
pub fn pairing_key_id(token: &str) -> String {
    format!("{PAIRING_PREFIX}{}", token_digest(token))
}

/// What the phone is shown about a sign-in (the server puts it in words:
/// the application's name, the browser, the approximate place).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushContext {
    /// The application the sign-in is for (`None`: Portcullis itself).
    pub client_id: Option<String>,
    /// The browser's `User-Agent` (control characters dropped, at most 256 characters).
    pub user_agent: String,
    /// The browser's address (empty when unknown).
    pub ip: String,
}

/// The pending sign-in a push request is for: its token's digest, and what the phone is shown.
#[derive(Debug, Clone, Default)]
pub struct PushBinding {
    /// Digest of the pending sign-in's token.
    pub sign_in: String,
    /// What the phone shows.
    pub context: PushContext,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushStatus {
    /// Waiting for the phone.
    Pending,
    /// Approved with the right number; the sign-in may take it (once).
    Approved,
    /// "This wasn't me": the sign-in ended.
    Denied,
    /// The wrong number was picked: the sign-in ended.
    WrongNumber,
    /// Approved and taken by the sign-in.
    Used,
}

impl PushStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::WrongNumber => "wrong_number",
            Self::Used => "used",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::WrongNumber, Self::Used].into_iter().find(|x| x.as_str() == s)
    }
}

/// A sign-in request sent to a user's phones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// Identifier (in the push payload and the signed answer).
    pub id: String,
    /// Whose sign-in.
    pub user_id: UserId,
    /// Digest of the pending sign-in's token: only that sign-in can take the approval.
    pub sign_in: String,
    /// The number the sign-in page shows.
    pub number: u8,
    /// The three numbers the phone offers (one is `number`).
    pub choices: [u8; 3],
    /// What the phone shows.
    pub context: PushContext,
    /// Where it stands.
    pub status: PushStatus,
    /// The phone that answered.
    pub device: Option<String>,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it can no longer be answered.
    pub expires_at: UnixTime,
}

impl PushRequest {
    /// A new request for `binding`, with a fresh number among three.
    pub fn new(user_id: UserId, binding: &PushBinding, now: UnixTime) -> Self {
        let mut rng = rand::rng();
        let mut choices = [0u8; 3];
        let mut i = 0;
        while i < choices.len() {
            let n = rng.random_range(10..=99);
            if !choices[..i].contains(&n) {
                choices[i] = n;
                i += 1;
            }
        }
        let number = choices[rng.random_range(0..choices.len())];
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            user_id,
            sign_in: binding.sign_in.clone(),
            number,
            choices,
            context: binding.context.clone(),
            status: PushStatus::Pending,
            device: None,
            created_at: now,
            expires_at: now + REQUEST_SECONDS,
        }
    }

    /// Whether the phone can still answer it.
    pub fn answerable(&self, now: UnixTime) -> bool {
        self.status == PushStatus::Pending && now < self.expires_at
    }
}

/// The phone's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushDecision {
    /// Approve, with the number picked.
    Approve(u8),
    /// "Deny — this wasn't me".
    Deny,
}

/// What a device key signs: every text names its purpose and the origin, so
/// a signature made for one call or one server does not serve another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedText<'a> {
    /// Pairing with a one-time token.
    Pairing {
        /// The pairing token.
        token: &'a str,
    },
    /// Listing the requests waiting for this phone, at a time.
    Listing {
        /// The phone's clock (Unix seconds), within [`CLOCK_SKEW_SECONDS`].
        at: UnixTime,
    },
    /// Answering a request.
    Answer {
        /// The request.
        request: &'a str,
        /// The decision.
        decision: PushDecision,
    },
}

impl SignedText<'_> {
    /// The exact text signed (ECDSA P-256 with SHA-256, as WebCrypto signs).
    pub fn text(&self, origin: &str) -> String {
        match self {
            Self::Pairing { token } => format!("portcullis-push-pair-v1\n{token}\n{origin}"),
            Self::Listing { at } => format!("portcullis-push-list-v1\n{at}\n{origin}"),
            Self::Answer { request, decision: PushDecision::Approve(n) } => {
                format!("portcullis-push-v1\n{request}\n{n}\napprove\n{origin}")
            }
            Self::Answer { request, decision: PushDecision::Deny } => format!("portcullis-push-v1\n{request}\n\ndeny\n{origin}"),
        }
    }
}

/// Whether `signature` (base64url of the 64-byte `r || s` WebCrypto makes)
/// is the device key `public_key`'s over `text` at `origin`.
pub fn signature_valid(public_key: &str, text: &SignedText<'_>, origin: &str, signature: &str) -> bool {
    use p256::ecdsa::signature::Verifier;
    let (Ok(key), Ok(sig)) = (URL_SAFE_NO_PAD.decode(public_key), URL_SAFE_NO_PAD.decode(signature)) else { return false };
    let (Ok(key), Ok(sig)) = (p256::ecdsa::VerifyingKey::from_sec1_bytes(&key), p256::ecdsa::Signature::from_slice(&sig)) else {
        return false;
    };
    key.verify(text.text(origin).as_bytes(), &sig).is_ok()
}

/// Whether `public_key` is an uncompressed P-256 point (base64url), as a device key must be.
pub fn valid_public_key(public_key: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(public_key)
        .ok()
        .filter(|k| k.len() == 65 && k[0] == 4)
        .is_some_and(|k| p256::ecdsa::VerifyingKey::from_sec1_bytes(&k).is_ok())
}

/// Checks a subscription the companion registers: an `https` endpoint with
/// a host name (RFC 8030 §8: push services are reached over TLS) and keys of
/// the sizes RFC 8291 gives. Where the endpoint resolves to is checked at
/// each send ([`PushSender`]).
pub fn check_subscription(s: &PushSubscription) -> Result<(), String> {
    let url = url::Url::parse(&s.endpoint).map_err(|_| "the push endpoint is not a URL".to_owned())?;
    if url.scheme() != "https" || !matches!(url.host(), Some(url::Host::Domain(_))) || s.endpoint.len() > 2048 {
        return Err("the push endpoint must be an https URL with a host name".into());
    }
    let key = URL_SAFE_NO_PAD.decode(&s.p256dh).ok().filter(|k| k.len() == 65 && p256::PublicKey::from_sec1_bytes(k).is_ok());
    let auth = URL_SAFE_NO_PAD.decode(&s.auth).ok().filter(|a| a.len() == 16);
    match (key, auth) {
        (Some(_), Some(_)) => Ok(()),
        _ => Err("the push subscription's keys are not those of RFC 8291".into()),
    }
}

/// Whether push is paused for an account with these denial times: after
/// [`DENIALS_TO_PAUSE`] denials within an hour, for an hour after the last of them.
pub fn paused(denials: &[UnixTime], now: UnixTime) -> bool {
    let mut times = denials.to_vec();
    times.sort_unstable();
    times.windows(DENIALS_TO_PAUSE).any(|w| w[DENIALS_TO_PAUSE - 1] - w[0] < PAUSE_SECONDS && now - w[DENIALS_TO_PAUSE - 1] < PAUSE_SECONDS)
}

/// The push-fatigue quotas of `user`'s requests.
pub fn quotas(user: UserId) -> [SlidingQuota; 2] {
    [
        SlidingQuota { key: format!("push-minute:{user}"), cap: PUSHES_PER_MINUTE, window: 60 },
        SlidingQuota { key: format!("push-hour:{user}"), cap: PUSHES_PER_HOUR, window: 3600 },
    ]
}

/// Approvals on a phone running the companion. `amr` `swk` (RFC 8176: a
/// software-secured key); not phishing-resistant: a relayed sign-in page
/// shows the right number too, so a look-alike site can still ask for it.
pub struct PushFactor;

impl<S: MfaStore> SecondFactor<S> for PushFactor {
    fn key(&self) -> FactorKey {
        FactorKey::Push
    }

    fn enabled(&self, ctx: &FactorContext<'_, S>) -> bool {
        ctx.push.is_some()
    }

    fn available(&self, _ctx: &FactorContext<'_, S>, _user: &User, enrolled: &Enrolled<'_>) -> bool {
        enrolled.credentials.iter().any(|c| c.kind == FactorKind::PushDevice) && !enrolled.push_paused
    }

    fn enrolls(&self) -> &'static [FactorKind] {
        &[FactorKind::PushDevice]
    }

    /// A pairing link for the companion; the phone finishes it
    /// ([`crate::credentials::Credentials::pair_push_device`]), not the
    /// page that showed the link, so `finish_enrollment` stays the default.
    fn begin_enrollment<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        new: NewCredential,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<EnrollmentPrompt>>> {
        Box::pin(async move {
            let push = ctx.push.ok_or(AccountError::NotFound)?;
            let token = random_token();
            let mut c = Credential::new(user.id, FactorKind::PushDevice, new.name, Vec::new(), now);
            c.public_key_id = Some(pairing_key_id(&token));
            let setup = PairingSetup { security_epoch: user.security_epoch };
            c.sealed_secret = sealed(ctx, &c.id, &setup);
            ctx.store.insert_credential(&c).await?;
            let link = format!("{}#pair={token}", push.companion_url);
            Ok(Some(EnrollmentPrompt::Pairing { credential_id: c.id, link, minutes: PAIRING_SECONDS / 60 }))
        })
    }

    /// Sends a request to every phone of the user (within the push-fatigue
    /// limits) and returns its id and the number to show.
    fn challenge<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        _to: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<PublicKeyChallenge>>> {
        Box::pin(async move {
            let (Some(push), Some(binding)) = (ctx.push, ctx.sign_in) else { return Err(AccountError::StepNotAllowed) };
            let phones: Vec<Credential> =
                ctx.store.credentials(user.id).await?.into_iter().filter(|c| c.kind == FactorKind::PushDevice).collect();
            if phones.is_empty() {
                return Err(AccountError::NotFound);
            }
            // Paused after denials even for a sign-in begun before the last of them.
            if paused(&ctx.store.push_denials_since(user.id, now - 2 * PAUSE_SECONDS).await?, now) {
                return Err(AccountError::StepNotAllowed);
            }
            if let Err(retry_after_secs) = ctx.store.take_send_quotas(&quotas(user.id), now).await? {
                return Err(AccountError::TooManyPushes { retry_after_secs });
            }
            let request = PushRequest::new(user.id, binding, now);
            ctx.store.insert_push_request(&request).await?;
            // The payload names the request only: what the phone shows, and
            // the numbers, are fetched over a signed call.
            let payload =
                serde_json::json!({ "type": "sign_in_request", "request": request.id, "expires_at": request.expires_at }).to_string();
            let ttl = u32::try_from(REQUEST_SECONDS).unwrap_or(120);
            let to: Vec<(String, PushSubscription)> = phones
                .iter()
                .filter(|p| p.flagged_at.is_none())
                .filter_map(|p| Some((p.id.clone(), PushDevice::of(ctx, p)?.subscription?)))
                .take(MAX_PHONES_PUSHED)
                .collect();
            // Sent after the answer, so a slow push service cannot hold the
            // sign-in page; a phone that is not reached still finds the
            // request when the companion opens.
            let sender = push.sender.clone();
            let sending = async move {
                for (credential, subscription) in &to {
                    match sender.send(subscription, payload.as_bytes(), ttl).await {
                        Ok(PushDelivery::Accepted) => {}
                        Ok(PushDelivery::Gone) => tracing::info!(%credential, "a phone's push subscription has expired"),
                        Err(e) => tracing::warn!(%credential, error = %e, "a sign-in request could not be pushed"),
                    }
                }
            };
            tokio::spawn(tracing::Instrument::instrument(sending, tracing::Span::current()));
            let options = serde_json::json!({ "request": request.id, "number": request.number, "expires_in": REQUEST_SECONDS });
            Ok(Some(PublicKeyChallenge { ceremony: request.id, options }))
        })
    }

    /// `response`: the id of a request a phone approved for this very sign-in (taken once).
    fn verify<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        _enrolled: &'a [Credential],
        response: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Verification>> {
        Box::pin(async move {
            let Some(binding) = ctx.sign_in else { return Ok(Verification::Rejected) };
            let live_after = now - TAKE_GRACE_SECONDS;
            Ok(match ctx.store.take_push_approval(user.id, response.trim(), &binding.sign_in, live_after).await? {
                Some(device) => Verification::Accepted { credential: Some(device) },
                None => Verification::Rejected,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;

    const ORIGIN: &str = "https://id.example.com";

    fn device() -> (p256::ecdsa::SigningKey, String) {
        let key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_encoded_point(false).as_bytes());
        (key, public)
    }

    fn sign(key: &p256::ecdsa::SigningKey, text: &SignedText<'_>, origin: &str) -> String {
        let sig: p256::ecdsa::Signature = key.sign(text.text(origin).as_bytes());
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    }

    #[test]
    fn an_approval_verifies_only_with_its_device_key_number_request_and_origin() {
        let (key, public) = device();
        let (_, other_public) = device();
        let approve = SignedText::Answer { request: "r1", decision: PushDecision::Approve(42) };
        let sig = sign(&key, &approve, ORIGIN);
        assert!(signature_valid(&public, &approve, ORIGIN, &sig), "the device's own signature");
        assert!(!signature_valid(&other_public, &approve, ORIGIN, &sig), "another device's key");
        let other_number = SignedText::Answer { request: "r1", decision: PushDecision::Approve(43) };
        assert!(!signature_valid(&public, &other_number, ORIGIN, &sig), "a signature for another number");
        let other_request = SignedText::Answer { request: "r2", decision: PushDecision::Approve(42) };
        assert!(!signature_valid(&public, &other_request, ORIGIN, &sig), "replayed for another request");
        let deny = SignedText::Answer { request: "r1", decision: PushDecision::Deny };
        assert!(!signature_valid(&public, &deny, ORIGIN, &sig), "an approval is not a denial");
        assert!(!signature_valid(&public, &approve, "https://evil.example", &sig), "signed for another origin");
        assert!(!signature_valid(&public, &approve, ORIGIN, "bm90IGEgc2lnbmF0dXJl"), "garbage");
        assert!(!signature_valid("AAAA", &approve, ORIGIN, &sig), "not a key");
    }

    #[test]
    fn texts_of_different_purposes_differ() {
        let pairing = SignedText::Pairing { token: "t" }.text(ORIGIN);
        let listing = SignedText::Listing { at: 5 }.text(ORIGIN);
        assert!(pairing.starts_with("portcullis-push-pair-v1\n") && listing.starts_with("portcullis-push-list-v1\n"));
        assert_eq!(
            SignedText::Answer { request: "r", decision: PushDecision::Approve(7) }.text(ORIGIN),
            "portcullis-push-v1\nr\n7\napprove\nhttps://id.example.com"
        );
    }

    #[test]
    fn device_keys_must_be_uncompressed_p256_points() {
        let (_, public) = device();
        assert!(valid_public_key(&public));
        assert!(!valid_public_key("AAAA"));
        assert!(!valid_public_key(&URL_SAFE_NO_PAD.encode([4u8; 65])), "not on the curve");
    }

    #[test]
    fn a_request_offers_three_different_numbers_one_of_them_shown() {
        for _ in 0..200 {
            let r = PushRequest::new(UserId(uuid::Uuid::nil()), &PushBinding::default(), 1000);
            assert!(r.choices.contains(&r.number));
            assert!(r.choices.iter().all(|n| (10..=99).contains(n)));
            assert!(r.choices[0] != r.choices[1] && r.choices[1] != r.choices[2] && r.choices[0] != r.choices[2]);
            assert_eq!(r.expires_at, 1000 + REQUEST_SECONDS);
            assert!(r.answerable(1000 + REQUEST_SECONDS - 1) && !r.answerable(1000 + REQUEST_SECONDS), "two minutes");
        }
    }

    #[test]
    fn three_denials_within_an_hour_pause_push_for_an_hour_after_the_third() {
        let now = 100_000;
        assert!(!paused(&[now - 10, now - 20], now), "two denials");
        assert!(paused(&[now - 10, now - 20, now - 30], now), "three in a minute");
        assert!(paused(&[now - 3599, now - 1800, now - 1], now));
        assert!(!paused(&[now - 3600 - 5000, now - 3600 - 4000, now - 3600], now), "the hour after the third is over");
        assert!(!paused(&[now - 7000, now - 3000, now - 10], now), "spread over two hours");
        assert!(paused(&[now - 7000, now - 3000, now - 2000, now - 10], now), "the last three within an hour");
    }

    #[test]
    fn push_fatigue_quotas_are_three_a_minute_and_ten_an_hour() {
        let q = quotas(UserId(uuid::Uuid::nil()));
        assert_eq!((q[0].cap, q[0].window), (3, 60));
        assert_eq!((q[1].cap, q[1].window), (10, 3600));
        assert_ne!(q[0].key, q[1].key);
    }
}
