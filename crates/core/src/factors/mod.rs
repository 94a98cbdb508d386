//! Second factors. Each factor is one module here, implementing
//! [`SecondFactor`]; what they share (the credential kinds, stored
//! credentials, the trait) lives in this file, and their names and words in
//! [`crate::methods`]. [`factor`] is the one place a key meets its module.

pub mod email;
pub mod otp;
pub mod push;
pub mod recovery;
pub mod sms;
pub mod totp;
pub mod webauthn;

use std::future::Future;

use crate::audit::AuditKind;
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::io::{BoxFuture, StoreResult};
use crate::messages::Message;
pub use crate::methods::FactorKey;
use crate::methods::{AuthMethod, StepFacts};
use crate::secrets::{MacKey, SecretBox};
use crate::session::AuthRecord;
use crate::user::{User, UserId};

/// What a factor operation returns.
pub type FactorResult<T> = Result<T, AccountError>;

/// How long a setup (an unconfirmed credential) can still be finished; older
/// ones are refused and purged.
pub const ENROLLMENT_SECONDS: i64 = 600;

/// Whether an unconfirmed credential is still within its setup time.
pub fn setup_is_live(c: &Credential, now: UnixTime) -> bool {
    c.confirmed_at.is_none() && now - c.created_at < ENROLLMENT_SECONDS
}

/// Sealing context of a credential's secret (binds the ciphertext to its row).
pub fn seal_context(credential_id: &str) -> String {
    format!("credential:{credential_id}")
}

/// What a factor may use to check a response.
pub struct FactorContext<'a, S> {
    /// Persistence.
    pub store: &'a S,
    /// At-rest encryption of credential secrets.
    pub sealer: &'a SecretBox,
    /// Key of the recovery-code tags.
    pub recovery_key: &'a MacKey,
    /// Issuer name shown in authenticator apps.
    pub issuer: &'a str,
    /// Whether users may add authenticator apps (`[totp] enabled`).
    pub totp_enabled: bool,
    /// The WebAuthn relying party; `None` when the issuer's host cannot be one (an IP address).
    pub relying_party: Option<&'a webauthn::RelyingParty>,
    /// Writes and delivers codes by email and text message.
    pub messenger: &'a crate::messages::Messenger,
    /// Limits on sent codes.
    pub otp: &'a otp::OtpSettings,
    /// Who the request that sends a code comes from (its quotas); `None`
    /// outside a request, where nothing is sent.
    pub requester: Option<otp::Requester<'a>>,
    /// Push approval; `None` when the operator turned it off.
    pub push: Option<&'a push::PushService>,
    /// The pending sign-in a challenge or answer is for (push requests are bound to it); `None` elsewhere.
    pub sign_in: Option<&'a push::PushBinding>,
}

/// What a user needs to finish setting up a credential.
#[derive(Debug, Clone)]
pub enum EnrollmentPrompt {
    /// A shared secret to scan or type into an app (TOTP).
    SharedSecret(SharedSecretPrompt),
    /// Options for `navigator.credentials.create()` (WebAuthn).
    PublicKey(PublicKeyChallenge),
    /// A code was sent to the new destination; the user types it back.
    CodeSent {
        /// The credential being set up (unconfirmed until finished).
        credential_id: String,
        /// Where the code went, mostly hidden.
        destination: String,
    },
    /// A link (shown as a QR code) that pairs a phone's companion app.
    Pairing {
        /// The credential being set up (unconfirmed until the phone pairs).
        credential_id: String,
        /// The companion's page with the one-time pairing token.
        link: String,
        /// How long the link works.
        minutes: i64,
    },
}

/// What the user asked to set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// Its kind.
    pub kind: FactorKind,
    /// The name the user gave it.
    pub name: String,
    /// Where codes go, for factors that send them (a phone number as typed).
    pub destination: String,
}

/// An authenticator-app secret being set up.
#[derive(Debug, Clone)]
pub struct SharedSecretPrompt {
    /// The credential being set up (unconfirmed until finished).
    pub credential_id: String,
    /// A secret to type in by hand, formatted for reading.
    pub secret: String,
    /// A URI to scan (rendered as a QR code).
    pub uri: String,
}

/// A WebAuthn ceremony begun on the server: the browser gets `options`,
/// and sends its answer back with `ceremony`.
#[derive(Debug, Clone)]
pub struct PublicKeyChallenge {
    /// Identifier of the server-side ceremony state.
    pub ceremony: String,
    /// JSON for `navigator.credentials.create()` or `.get()`.
    pub options: serde_json::Value,
}

/// The outcome of checking a second-factor response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Right, and now spent.
    Accepted {
        /// The credential that answered, when the factor has one.
        credential: Option<String>,
    },
    /// Wrong, used, or expired.
    Rejected,
    /// A security key's signature counter went backwards: two copies of the
    /// key may exist. The credential is now disabled.
    ClonedAuthenticator {
        /// The disabled credential.
        credential: String,
        /// The credential's name, to tell the user.
        name: String,
    },
}

/// How finishing an enrollment went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentCheck {
    /// The credential works and now counts.
    Confirmed {
        /// The credential's id.
        id: String,
        /// The credential's name.
        name: String,
        /// What it is, as the setup began (a security key or a passkey: the
        /// ceremony says, not the form that finishes it).
        kind: FactorKind,
    },
    /// The response was wrong; the credential stays unconfirmed.
    Rejected,
    /// No such pending credential.
    Unknown,
}

/// A place a code can be sent, as the user picks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDestination {
    /// Credential id (the form value).
    pub id: String,
    /// The user's name for it.
    pub name: String,
    /// The address or number, mostly hidden.
    pub masked: String,
}

/// What an account has set up, as the factors judge their availability.
#[derive(Debug, Clone, Copy)]
pub struct Enrolled<'a> {
    /// The account's confirmed credentials.
    pub credentials: &'a [Credential],
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Push approval is paused after repeated denials ([`push::paused`]).
    pub push_paused: bool,
}

/// What a factor has the account's owner told after a success with it.
#[derive(Debug, Clone)]
pub struct SuccessNotice {
    /// The audit event.
    pub audit: AuditKind,
    /// Its detail.
    pub detail: serde_json::Value,
    /// The message to the owner.
    pub message: Message,
}

/// One kind of second factor at sign-in. The sign-in flow only knows this
/// trait: adding a factor means adding a module that implements it and
/// naming it in [`factor`], not another branch in the flow.
pub trait SecondFactor<S: MfaStore>: Send + Sync {
    /// Its key.
    fn key(&self) -> FactorKey;
    /// Its names, words, `amr` values and the answer its page asks for.
    fn facts(&self) -> StepFacts {
        self.key().facts()
    }
    /// What a success adds to the session's record.
    fn method(&self) -> AuthMethod {
        self.key().method()
    }
    /// Whether the operator's settings turn it on.
    fn enabled(&self, ctx: &FactorContext<'_, S>) -> bool;
    /// Whether the user can use it, given what the account has set up
    /// (loaded once by the caller for every factor, not once per factor).
    fn available(&self, ctx: &FactorContext<'_, S>, user: &User, enrolled: &Enrolled<'_>) -> bool;
    /// Prepares a challenge (sends a code, builds a WebAuthn request). Factors
    /// whose response the user already holds need none. `to` is the
    /// destination the user chose among [`SecondFactor::destinations`].
    fn challenge<'a>(
        &'a self,
        _ctx: &'a FactorContext<'a, S>,
        _user: &'a User,
        _to: Option<&'a str>,
        _now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<PublicKeyChallenge>>> {
        Box::pin(async { Ok(None) })
    }
    /// Where a code can go when the user has several places (phone numbers), in offer order.
    fn destinations<'a>(&'a self, _ctx: &'a FactorContext<'a, S>, _user: &'a User) -> BoxFuture<'a, FactorResult<Vec<CodeDestination>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// The credential kinds users enroll through this factor (on the
    /// security page, and inline during a sign-in for an account without a factor).
    fn enrolls(&self) -> &'static [FactorKind] {
        &[]
    }
    /// Begins enrolling a credential.
    fn begin_enrollment<'a>(
        &'a self,
        _ctx: &'a FactorContext<'a, S>,
        _user: &'a User,
        _new: NewCredential,
        _now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<EnrollmentPrompt>>> {
        Box::pin(async { Ok(None) })
    }
    /// Shows an unfinished enrollment again (after a wrong first response).
    fn pending_enrollment<'a>(
        &'a self,
        _ctx: &'a FactorContext<'a, S>,
        _user: &'a User,
        _credential_id: &'a str,
        _now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<EnrollmentPrompt>>> {
        Box::pin(async { Ok(None) })
    }
    /// Finishes an enrollment with the user's first response (`pending`: the
    /// unconfirmed credential or the WebAuthn ceremony).
    fn finish_enrollment<'a>(
        &'a self,
        _ctx: &'a FactorContext<'a, S>,
        _user: &'a User,
        _pending: &'a str,
        _response: &'a str,
        _now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<EnrollmentCheck>> {
        Box::pin(async { Ok(EnrollmentCheck::Unknown) })
    }
    /// Checks `response` and spends it atomically. `enrolled`: the user's
    /// credentials as read to offer this step (not read again: the spending
    /// is a conditional write on the credential, so one removed meanwhile
    /// still cannot be used).
    fn verify<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        enrolled: &'a [Credential],
        response: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Verification>>;
    /// What the owner is told after a success (recovery codes: how many are left).
    fn after_success<'a>(&'a self, _ctx: &'a FactorContext<'a, S>, _user: &'a User) -> BoxFuture<'a, FactorResult<Option<SuccessNotice>>> {
        Box::pin(async { Ok(None) })
    }
}

impl From<bool> for Verification {
    /// A one-time value was spent (`true`) or was wrong or used (`false`).
    fn from(spent: bool) -> Self {
        if spent { Self::Accepted { credential: None } } else { Self::Rejected }
    }
}

/// The module behind `key`: the one place a factor is named beside its
/// facts (an exhaustive match, so a new key without a module does not compile).
pub fn factor<S: MfaStore>(key: FactorKey) -> Box<dyn SecondFactor<S>> {
    match key {
        FactorKey::Webauthn => Box::new(webauthn::WebauthnFactor),
        FactorKey::Totp => Box::new(totp::TotpFactor),
        FactorKey::Sms => Box::new(sms::SmsCodeFactor),
        FactorKey::Email => Box::new(email::EmailCodeFactor),
        FactorKey::Recovery => Box::new(recovery::RecoveryCodeFactor),
        FactorKey::Push => Box::new(push::PushFactor),
    }
}

/// Every second factor, in the order of [`FactorKey::ALL`] (strongest first).
pub fn all<S: MfaStore>() -> impl Iterator<Item = Box<dyn SecondFactor<S>>> {
    FactorKey::ALL.into_iter().map(factor::<S>)
}

/// The factors the operator's settings turn on.
pub fn enabled<S: MfaStore>(ctx: &FactorContext<'_, S>) -> Vec<FactorKey> {
    all::<S>().filter(|f| f.enabled(ctx)).map(|f| f.key()).collect()
}

/// The credential kinds users may set up on this server.
pub fn enrollable<S: MfaStore>(ctx: &FactorContext<'_, S>) -> Vec<FactorKind> {
    let mut kinds: Vec<FactorKind> = all::<S>().filter(|f| f.enabled(ctx)).flat_map(|f| f.enrolls().iter().copied()).collect();
    kinds.sort_by_key(|k| FactorKind::ALL.iter().position(|x| x == k));
    kinds
}

/// The kinds of second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    /// Authenticator app (TOTP).
    Totp,
    /// Phone number receiving codes by text message.
    Phone,
    /// WebAuthn credential registered as a second factor (may be non-discoverable).
    SecurityKey,
    /// Discoverable, user-verifying WebAuthn credential: also signs in without a password.
    Passkey,
    /// A phone running the companion app, approving sign-ins (push).
    PushDevice,
}

impl FactorKind {
    /// Every kind, in the order enrollment offers them.
    pub const ALL: [FactorKind; 5] = [Self::Totp, Self::Passkey, Self::SecurityKey, Self::PushDevice, Self::Phone];

    /// The factor that signs in with credentials of this kind.
    pub fn factor(self) -> FactorKey {
        match self {
            Self::Totp => FactorKey::Totp,
            Self::Phone => FactorKey::Sms,
            Self::SecurityKey | Self::Passkey => FactorKey::Webauthn,
            Self::PushDevice => FactorKey::Push,
        }
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Phone => "phone",
            Self::SecurityKey => "security_key",
            Self::Passkey => "passkey",
            Self::PushDevice => "push_device",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What users call it (a message id of the catalogs).
    pub fn label(self) -> &'static str {
        match self {
            Self::Totp => "kind-totp",
            Self::Phone => "kind-phone",
            Self::SecurityKey => "kind-security_key",
            Self::Passkey => "kind-passkey",
            Self::PushDevice => "kind-push_device",
        }
    }

    /// Whether a sign-in that waits for a first factor can set it up inline.
    /// A phone pairs on the security page: the pairing finishes on the phone,
    /// not on the page of the sign-in.
    pub fn enrolls_inline(self) -> bool {
        self != Self::PushDevice
    }
}

/// An enrolled (or being enrolled) second-factor credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// Identifier.
    pub id: String,
    /// Owner.
    pub user_id: UserId,
    /// Kind.
    pub kind: FactorKind,
    /// Name the user gave it.
    pub name: String,
    /// Secret sealed with the at-rest key (context: `credential:{id}`).
    pub sealed_secret: Vec<u8>,
    /// Set once the user proved the credential works; unconfirmed ones do not count.
    pub confirmed_at: Option<UnixTime>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Last successful use.
    pub last_used_at: Option<UnixTime>,
    /// WebAuthn credential id (base64url), unique across users.
    pub public_key_id: Option<String>,
    /// Last WebAuthn signature counter seen.
    pub sign_count: u32,
    /// When the credential was disabled as possibly cloned.
    pub flagged_at: Option<UnixTime>,
    /// Authenticator model, from its AAGUID, where known.
    pub authenticator: String,
}

impl Credential {
    /// A credential of `kind` with no WebAuthn data yet.
    pub fn new(user_id: UserId, kind: FactorKind, name: String, sealed_secret: Vec<u8>, now: UnixTime) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            user_id,
            kind,
            name,
            sealed_secret,
            confirmed_at: None,
            created_at: now,
            last_used_at: None,
            public_key_id: None,
            sign_count: 0,
            flagged_at: None,
            authenticator: String::new(),
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// A browser the user asked to remember: while it is valid, a password sign-in
/// from it needs no second step, and the session carries the factors used
/// when it was remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedBrowser {
    /// Identifier (also in the signed cookie).
    pub id: String,
    /// Owner.
    pub user_id: UserId,
    /// The second-factor steps it stands in for.
    pub auth: AuthRecord,
    /// Browser description, for the list on the security page.
    pub user_agent: String,
    /// When it was remembered.
    pub created_at: UnixTime,
    /// When it stops counting.
    pub expires_at: UnixTime,
    /// Last sign-in that used it.
    pub last_used_at: Option<UnixTime>,
    /// The account's [`crate::user::User::security_epoch`] when it was
    /// remembered: it stands in for nothing once that has moved on.
    pub security_epoch: i64,
}

/// Persistence of second factors.
pub trait MfaStore: Clone + Send + Sync + 'static {
    /// Stores a credential (unconfirmed until [`MfaStore::confirm_credential`]).
    fn insert_credential(&self, c: &Credential) -> impl Future<Output = StoreResult<()>> + Send;
    /// Stores a credential confirmed as it is added (a security key or
    /// passkey), only while the account's `security_epoch` is the one the
    /// request read: false if its sign-ins were ended meanwhile (an MFA reset
    /// in flight must not be outlived by a key added across it).
    fn insert_confirmed_credential(&self, c: &Credential, security_epoch: i64) -> impl Future<Output = StoreResult<bool>> + Send;
    /// A credential of `user` by id.
    fn credential(&self, user: UserId, id: &str) -> impl Future<Output = StoreResult<Option<Credential>>> + Send;
    /// The user's confirmed credentials, oldest first.
    fn credentials(&self, user: UserId) -> impl Future<Output = StoreResult<Vec<Credential>>> + Send;
    /// Confirms a credential with its first accepted TOTP step at `times.0`;
    /// false if already confirmed, unknown, or begun before `times.1` (a
    /// setup left unfinished too long).
    fn confirm_credential(
        &self,
        user: UserId,
        id: &str,
        step: i64,
        times: (UnixTime, UnixTime),
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Records a TOTP step as used if it is later than every step used before (atomic; false = replay).
    fn consume_totp_step(&self, id: &str, step: i64, now: UnixTime) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Renames a credential; false if unknown.
    fn rename_credential(&self, user: UserId, id: &str, name: &str) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Deletes a credential; false if unknown.
    fn delete_credential(&self, user: UserId, id: &str) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Replaces the user's recovery codes with these tags (one transaction).
    fn replace_recovery_codes(&self, user: UserId, tags: &[String], now: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Spends a recovery code atomically; false if unknown or used.
    fn consume_recovery_code(&self, user: UserId, tag: &str, now: UnixTime) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Unused recovery codes left.
    fn recovery_codes_left(&self, user: UserId) -> impl Future<Output = StoreResult<u32>> + Send;
    /// Removes every credential and recovery code of a user (MFA reset).
    fn delete_all_factors(&self, user: UserId) -> impl Future<Output = StoreResult<()>> + Send;
    /// The credential with this WebAuthn credential id, whoever owns it.
    fn credential_by_public_key_id(&self, public_key_id: &str) -> impl Future<Output = StoreResult<Option<Credential>>> + Send;
    /// Records a WebAuthn assertion: stores `sign_count` if it is higher than
    /// the stored one, or both are 0 (authenticators without a counter).
    /// Atomic; false means the counter did not advance (possible clone).
    fn record_assertion(&self, id: &str, sign_count: u32, now: UnixTime) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Deletes unconfirmed credentials created before `before` (setups never finished).
    fn purge_unconfirmed_credentials(&self, before: UnixTime) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Disables a credential as possibly cloned.
    fn flag_credential(&self, id: &str, now: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Stores the server-side state of a WebAuthn ceremony.
    fn save_ceremony(&self, c: &webauthn::Ceremony) -> impl Future<Output = StoreResult<()>> + Send;
    /// Takes (deletes and returns) a ceremony that has not expired; exactly one caller gets it.
    fn take_ceremony(&self, id: &str, now: UnixTime) -> impl Future<Output = StoreResult<Option<webauthn::Ceremony>>> + Send;
    /// Stores a sent code and kills the user's earlier live codes on that
    /// channel for that purpose (one transaction).
    fn replace_otp_code(&self, c: &otp::OneTimeCode) -> impl Future<Output = StoreResult<()>> + Send;
    /// When the last code on `channel` for `purpose` was sent to `user`.
    fn last_otp_sent_at(
        &self,
        user: UserId,
        kind: (otp::OtpChannel, otp::CodePurpose),
    ) -> impl Future<Output = StoreResult<Option<UnixTime>>> + Send;
    /// Checks an answer against the user's live code for its channel, purpose
    /// and credential, in one conditional `UPDATE`: the code is spent if the
    /// tag matches and it has had fewer than `max_attempts` wrong tries (true
    /// for exactly one caller); otherwise one wrong try is counted against it.
    fn consume_otp_code(&self, answer: &otp::CodeAnswer<'_>) -> impl Future<Output = StoreResult<otp::CodeCheck>> + Send;
    /// Counts one event against every quota, atomically and all or nothing:
    /// `Err(retry_after_secs)` (and nothing counted) when one of them is spent.
    fn take_send_quotas(
        &self,
        quotas: &[crate::rate_limit::SlidingQuota],
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<Result<(), i64>>> + Send;
    /// Stores a push sign-in request.
    fn insert_push_request(&self, r: &push::PushRequest) -> impl Future<Output = StoreResult<()>> + Send;
    /// A push request by id.
    fn push_request(&self, id: &str) -> impl Future<Output = StoreResult<Option<push::PushRequest>>> + Send;
    /// The user's requests still waiting for an answer at `now`, newest first.
    fn pending_push_requests(&self, user: UserId, now: UnixTime) -> impl Future<Output = StoreResult<Vec<push::PushRequest>>> + Send;
    /// Answers a request in one conditional `UPDATE`: pending → `to`, by
    /// `device`, only while it is live; true for exactly one caller.
    fn answer_push_request(
        &self,
        request: (UserId, &str),
        answer: (push::PushStatus, &str),
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Takes an approval for the pending sign-in `sign_in` (a token digest):
    /// approved → used, once, if the request expires after `live_after`;
    /// the device that approved, its last use recorded as the approval's time.
    fn take_push_approval(
        &self,
        user: UserId,
        id: &str,
        sign_in: &str,
        live_after: UnixTime,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// When the user's requests answered "this wasn't me" since `since`.
    fn push_denials_since(&self, user: UserId, since: UnixTime) -> impl Future<Output = StoreResult<Vec<UnixTime>>> + Send;
    /// Finishes pairing a phone: the unconfirmed credential whose
    /// `public_key_id` is `pairing` (begun after `started_after`) gets the
    /// device's sealed secret, key id and name, and is confirmed; once, and
    /// only while the account's `security_epoch` is the one read.
    fn pair_push_device(
        &self,
        pairing: &str,
        device: &Credential,
        epoch_and_start: (i64, UnixTime),
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Deletes push requests created before `before`.
    fn purge_push_requests(&self, before: UnixTime) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Sets whether the user must use MFA (and enroll at next sign-in if they have no factor).
    fn set_mfa_required(&self, user: UserId, required: bool) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Stores a remembered browser.
    fn insert_remembered_browser(&self, b: &RememberedBrowser) -> impl Future<Output = StoreResult<()>> + Send;
    /// A remembered browser of `user` that is neither expired nor revoked; records its use.
    fn use_remembered_browser(
        &self,
        user: UserId,
        id: &str,
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<Option<RememberedBrowser>>> + Send;
    /// The user's valid remembered browsers, newest first.
    fn remembered_browsers(&self, user: UserId, now: UnixTime) -> impl Future<Output = StoreResult<Vec<RememberedBrowser>>> + Send;
    /// Forgets one remembered browser; false if unknown.
    fn forget_remembered_browser(&self, user: UserId, id: &str, now: UnixTime) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Forgets all of a user's remembered browsers.
    fn forget_all_remembered_browsers(&self, user: UserId, now: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
}
