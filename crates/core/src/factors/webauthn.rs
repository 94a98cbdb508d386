//! WebAuthn: security keys and passkeys (webauthn-rs), as a second factor and
//! for passwordless sign-in.
//!
//! Ceremony state lives in the store with a five-minute expiry and is taken
//! exactly once, so any server process can finish a ceremony another began
//! and no challenge can be answered twice. The relying-party id is the
//! issuer's host and the only accepted origin is the issuer's origin.
//!
//! The signature counter is checked by one conditional UPDATE: a counter that
//! does not advance (WebAuthn §6.1.1: a possibly cloned authenticator) refuses
//! the sign-in and disables the credential; authenticators that always report
//! 0 are accepted.

use std::collections::BTreeMap;

use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    AttestationCaList, AttestationCaListBuilder, AttestedPasskeyRegistration, CreationChallengeResponse, Credential as WebauthnCredential,
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, SecurityKey,
    SecurityKeyAuthentication, SecurityKeyRegistration, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::{
    Credential, Enrolled, EnrollmentCheck, EnrollmentPrompt, FactorContext, FactorKey, FactorKind, FactorResult, MfaStore, NewCredential,
    PublicKeyChallenge, SecondFactor, Verification, seal_context,
};
use crate::clock::UnixTime;
use crate::error::{AccountError, StoreError};
use crate::io::BoxFuture;
use crate::user::{User, UserId};

/// How long a browser has to answer a challenge.
pub const CEREMONY_SECONDS: i64 = 300;

/// An authenticator model the operator allows when attestation is required.
#[derive(Debug, Clone)]
pub struct AllowedAuthenticator {
    /// Its AAGUID.
    pub aaguid: Uuid,
    /// Its name, shown to users.
    pub name: String,
    /// PEM of the attestation root its certificates chain to.
    pub ca_pem: Vec<u8>,
}

/// Names of common authenticators by AAGUID (from the community-maintained
/// passkey-authenticator-aaguids list), shown next to a credential's name.
const KNOWN_AUTHENTICATORS: [(&str, &str); 9] = [
    ("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager"),
    ("adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"),
    ("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"),
    ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
    ("9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"),
    ("6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"),
    ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
    ("d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"),
    ("cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series"),
];

/// The relying party: webauthn-rs configured for the issuer, plus the
/// operator's attestation policy.
pub struct RelyingParty {
    webauthn: Webauthn,
    /// When set, registrations must carry an attestation from one of these.
    attestation: Option<AttestationCaList>,
    names: BTreeMap<Uuid, String>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty").field("attestation_required", &self.attestation.is_some()).finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// The relying party of `issuer`; `Ok(None)` when its host is an IP
    /// address, which browsers refuse as a relying-party id.
    pub fn new(issuer: &str, product_name: &str, allowed: &[AllowedAuthenticator]) -> Result<Option<Self>, String> {
        let origin = Url::parse(issuer).map_err(|e| format!("issuer {issuer:?}: {e}"))?;
        let Some(rp_id) = origin.domain() else { return Ok(None) };
        let webauthn = WebauthnBuilder::new(rp_id, &origin)
            .and_then(|b| b.rp_name(product_name).build())
            .map_err(|e| format!("WebAuthn relying party for {issuer}: {e}"))?;
        let mut names: BTreeMap<Uuid, String> =
            KNOWN_AUTHENTICATORS.iter().filter_map(|(id, name)| Uuid::parse_str(id).ok().map(|id| (id, (*name).to_owned()))).collect();
        let attestation = if allowed.is_empty() {
            None
        } else {
            let mut list = AttestationCaListBuilder::new();
            for a in allowed {
                list.insert_device_pem(&a.ca_pem, a.aaguid, a.name.clone(), BTreeMap::new())
                    .map_err(|e| format!("attestation CA of {} ({}): {e}", a.name, a.aaguid))?;
                names.insert(a.aaguid, a.name.clone());
            }
            Some(list.build())
        };
        Ok(Some(Self { webauthn, attestation, names }))
    }

    fn authenticator_name(&self, reg: &RegisterPublicKeyCredential) -> String {
        aaguid_of(reg).and_then(|id| self.names.get(&id).cloned()).unwrap_or_default()
    }
}

/// The AAGUID in a registration's authenticator data (bytes 37..53, WebAuthn
/// §6.5.1), if the authenticator sent a non-zero one.
fn aaguid_of(reg: &RegisterPublicKeyCredential) -> Option<Uuid> {
    use serde_cbor_2::Value;
    let Value::Map(object) = serde_cbor_2::from_slice(&reg.response.attestation_object).ok()? else { return None };
    let Some(Value::Bytes(auth_data)) = object.get(&Value::Text("authData".into())) else { return None };
    let id = Uuid::from_bytes(auth_data.get(37..53)?.try_into().ok()?);
    (!id.is_nil()).then_some(id)
}

/// Server-side state of one WebAuthn ceremony.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// Random identifier the browser sends back.
    pub id: String,
    /// The user it is for (`None` for passwordless sign-in: not known yet).
    pub user_id: Option<UserId>,
    /// What it is for (diagnostics).
    pub purpose: String,
    /// Serialised [`CeremonyState`].
    pub state: String,
    /// When it lapses.
    pub expires_at: UnixTime,
}

#[derive(Serialize, Deserialize)]
enum Registration {
    SecurityKey(SecurityKeyRegistration),
    Passkey(PasskeyRegistration),
    AttestedPasskey(AttestedPasskeyRegistration),
}

#[derive(Serialize, Deserialize)]
enum CeremonyState {
    Register { kind: FactorKind, name: String, registration: Registration },
    SecondFactor(SecurityKeyAuthentication),
    Passwordless(DiscoverableAuthentication),
}

impl CeremonyState {
    fn purpose(&self) -> &'static str {
        match self {
            Self::Register { .. } => "register",
            Self::SecondFactor(_) => "second_factor",
            Self::Passwordless(_) => "passwordless",
        }
    }
}

fn webauthn_failed(e: WebauthnError) -> AccountError {
    AccountError::Store(StoreError::Backend(format!("WebAuthn: {e}")))
}

fn rp<'a, S>(ctx: &FactorContext<'a, S>) -> FactorResult<&'a RelyingParty> {
    ctx.relying_party.ok_or(AccountError::WebauthnUnavailable)
}

async fn save<S: MfaStore>(
    ctx: &FactorContext<'_, S>,
    user: Option<UserId>,
    state: &CeremonyState,
    options: impl Serialize,
    now: UnixTime,
) -> FactorResult<PublicKeyChallenge> {
    let ceremony = Ceremony {
        id: crate::secrets::random_token(),
        user_id: user,
        purpose: state.purpose().to_owned(),
        state: serde_json::to_string(state).map_err(|e| StoreError::Backend(e.to_string()))?,
        expires_at: now + CEREMONY_SECONDS,
    };
    ctx.store.save_ceremony(&ceremony).await?;
    let options = serde_json::to_value(options).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(PublicKeyChallenge { ceremony: ceremony.id, options })
}

/// Takes a ceremony for `user` (or for nobody yet); `None` if unknown, expired, used, or someone else's.
async fn take<S: MfaStore>(
    ctx: &FactorContext<'_, S>,
    id: &str,
    user: Option<UserId>,
    now: UnixTime,
) -> FactorResult<Option<CeremonyState>> {
    let Some(c) = ctx.store.take_ceremony(id, now).await? else { return Ok(None) };
    if c.user_id != user {
        return Ok(None);
    }
    Ok(serde_json::from_str(&c.state).ok())
}

fn is_webauthn(c: &Credential) -> bool {
    matches!(c.kind, FactorKind::SecurityKey | FactorKind::Passkey)
}

/// The user's usable WebAuthn credentials with their webauthn-rs records.
async fn usable<S: MfaStore>(ctx: &FactorContext<'_, S>, user: UserId) -> FactorResult<Vec<(Credential, WebauthnCredential)>> {
    let mut out = Vec::new();
    for c in ctx.store.credentials(user).await?.into_iter().filter(|c| is_webauthn(c) && c.flagged_at.is_none()) {
        match open(ctx, &c) {
            Some(record) => out.push((c, record)),
            None => tracing::error!(credential = %c.id, "WebAuthn credential record cannot be decrypted"),
        }
    }
    Ok(out)
}

fn open<S>(ctx: &FactorContext<'_, S>, c: &Credential) -> Option<WebauthnCredential> {
    let json = ctx.sealer.open(&seal_context(&c.id), &c.sealed_secret).ok()?;
    serde_json::from_slice(&json).ok()
}

/// Starts registering a security key or a passkey for `user`.
async fn begin_registration<S: MfaStore>(
    ctx: &FactorContext<'_, S>,
    user: &User,
    kind: FactorKind,
    name: String,
    now: UnixTime,
) -> FactorResult<PublicKeyChallenge> {
    let rp = rp(ctx)?;
    // The same authenticator cannot be registered twice.
    let exclude: Vec<_> = usable(ctx, user.id).await?.into_iter().map(|(_, r)| r.cred_id).collect();
    let exclude = (!exclude.is_empty()).then_some(exclude);
    let handle = user.id.0;
    let email = user.email.as_str();
    let display = if user.name.is_empty() { email } else { user.name.as_str() };
    let w = &rp.webauthn;
    let (options, registration): (CreationChallengeResponse, Registration) = match (kind, &rp.attestation) {
        (FactorKind::SecurityKey, ca) => {
            let (o, s) = w.start_securitykey_registration(handle, email, display, exclude, ca.clone(), None).map_err(webauthn_failed)?;
            (o, Registration::SecurityKey(s))
        }
        (FactorKind::Passkey, Some(ca)) => {
            let (o, s) =
                w.start_attested_passkey_registration(handle, email, display, exclude, ca.clone(), None).map_err(webauthn_failed)?;
            (o, Registration::AttestedPasskey(s))
        }
        (FactorKind::Passkey, None) => {
            let (o, s) = w.start_passkey_registration(handle, email, display, exclude).map_err(webauthn_failed)?;
            (o, Registration::Passkey(s))
        }
        (FactorKind::Totp | FactorKind::Phone | FactorKind::PushDevice, _) => return Err(AccountError::NotFound),
    };
    let mut options = serde_json::to_value(options).map_err(|e| StoreError::Backend(e.to_string()))?;
    if kind == FactorKind::Passkey
        && let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut())
    {
        // webauthn-rs leaves residentKey "discouraged"; a passkey must be
        // discoverable, or "Sign in with a passkey" could not find it.
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    if kind == FactorKind::SecurityKey
        && let Some(extensions) = options.pointer_mut("/publicKey/extensions").and_then(|v| v.as_object_mut())
    {
        // Chromium refuses credProtect "userVerificationRequired" for a
        // non-discoverable credential without required user verification
        // (NotSupportedError), and it protects nothing there: credProtect
        // guards discoverable credentials against enumeration.
        extensions.remove("credentialProtectionPolicy");
        extensions.remove("enforceCredentialProtectionPolicy");
    }
    save(ctx, Some(user.id), &CeremonyState::Register { kind, name, registration }, options, now).await
}

/// Finishes a registration with the browser's answer.
async fn finish_registration<S: MfaStore>(
    ctx: &FactorContext<'_, S>,
    user: &User,
    ceremony: &str,
    response: &str,
    now: UnixTime,
) -> FactorResult<EnrollmentCheck> {
    let rp = rp(ctx)?;
    let Some(CeremonyState::Register { kind, name, registration }) = take(ctx, ceremony, Some(user.id), now).await? else {
        return Ok(EnrollmentCheck::Unknown);
    };
    let Ok(reg) = serde_json::from_str::<RegisterPublicKeyCredential>(response) else { return Ok(EnrollmentCheck::Rejected) };
    let w = &rp.webauthn;
    let record: Result<WebauthnCredential, WebauthnError> = match &registration {
        Registration::SecurityKey(s) => w.finish_securitykey_registration(&reg, s).map(Into::into),
        Registration::Passkey(s) => w.finish_passkey_registration(&reg, s).map(Into::into),
        Registration::AttestedPasskey(s) => w.finish_attested_passkey_registration(&reg, s).map(|k| Passkey::from(k).into()),
    };
    let record = match record {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(user = %user.id, error = %e, "WebAuthn registration refused");
            return Ok(EnrollmentCheck::Rejected);
        }
    };
    let mut credential = Credential::new(user.id, kind, name.clone(), Vec::new(), now);
    let json = serde_json::to_vec(&record).map_err(|e| StoreError::Backend(e.to_string()))?;
    credential.sealed_secret = ctx.sealer.seal(&seal_context(&credential.id), &json);
    credential.public_key_id = Some(BASE64URL_NOPAD.encode(&record.cred_id));
    credential.sign_count = record.counter;
    credential.authenticator = rp.authenticator_name(&reg);
    credential.confirmed_at = Some(now);
    match ctx.store.insert_confirmed_credential(&credential, user.security_epoch).await {
        Ok(true) => Ok(EnrollmentCheck::Confirmed { id: credential.id, name, kind }),
        Ok(false) => Err(AccountError::SignInExpired),
        // Already registered (to this or another account).
        Err(StoreError::Conflict) => Ok(EnrollmentCheck::Rejected),
        Err(e) => Err(e.into()),
    }
}

/// Records a verified assertion; a counter that did not advance disables the credential.
async fn record_use<S: MfaStore>(ctx: &FactorContext<'_, S>, c: &Credential, counter: u32, now: UnixTime) -> FactorResult<Verification> {
    if ctx.store.record_assertion(&c.id, counter, now).await? {
        return Ok(Verification::Accepted { credential: Some(c.id.clone()) });
    }
    flag(ctx, c, counter, now).await
}

async fn flag<S: MfaStore>(ctx: &FactorContext<'_, S>, c: &Credential, counter: u32, now: UnixTime) -> FactorResult<Verification> {
    tracing::warn!(target: "portcullis::audit", event = "webauthn_counter_regressed", user = %c.user_id, credential = %c.id, stored = c.sign_count, received = counter);
    ctx.store.flag_credential(&c.id, now).await?;
    Ok(Verification::ClonedAuthenticator { credential: c.id.clone(), name: c.name.clone() })
}

/// The browser's answer to a second-factor challenge.
#[derive(Deserialize)]
pub struct AssertionResponse {
    /// The ceremony answered.
    pub ceremony: String,
    /// The browser's assertion.
    pub credential: PublicKeyCredential,
}

/// The answer to a WebAuthn challenge as the second-step form sends it.
pub fn assertion_response(ceremony: &str, credential: &str) -> String {
    let credential: serde_json::Value = serde_json::from_str(credential).unwrap_or(serde_json::Value::Null);
    serde_json::json!({ "ceremony": ceremony, "credential": credential }).to_string()
}

/// Security keys and passkeys after a password.
pub struct WebauthnFactor;

impl<S: MfaStore> SecondFactor<S> for WebauthnFactor {
    fn key(&self) -> FactorKey {
        FactorKey::Webauthn
    }

    // Only where the issuer's host can be a relying party (not an IP address).
    fn enabled(&self, ctx: &FactorContext<'_, S>) -> bool {
        ctx.relying_party.is_some()
    }

    fn available(&self, ctx: &FactorContext<'_, S>, _user: &User, enrolled: &Enrolled<'_>) -> bool {
        ctx.relying_party.is_some()
            && enrolled.credentials.iter().any(|c| is_webauthn(c) && c.flagged_at.is_none() && open(ctx, c).is_some())
    }

    fn enrolls(&self) -> &'static [FactorKind] {
        &[FactorKind::SecurityKey, FactorKind::Passkey]
    }

    fn begin_enrollment<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        new: NewCredential,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<EnrollmentPrompt>>> {
        Box::pin(async move { Ok(Some(EnrollmentPrompt::PublicKey(begin_registration(ctx, user, new.kind, new.name, now).await?))) })
    }

    fn finish_enrollment<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        pending: &'a str,
        response: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<EnrollmentCheck>> {
        Box::pin(finish_registration(ctx, user, pending, response, now))
    }

    fn challenge<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        _to: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<PublicKeyChallenge>>> {
        Box::pin(async move {
            let rp = rp(ctx)?;
            let keys: Vec<SecurityKey> = usable(ctx, user.id).await?.into_iter().map(|(_, r)| SecurityKey::from(r)).collect();
            if keys.is_empty() {
                return Ok(None);
            }
            // User verification "preferred": the password was the first factor.
            let (options, state) = rp.webauthn.start_securitykey_authentication(&keys).map_err(webauthn_failed)?;
            Ok(Some(save(ctx, Some(user.id), &CeremonyState::SecondFactor(state), options, now).await?))
        })
    }

    fn verify<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        enrolled: &'a [Credential],
        response: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Verification>> {
        Box::pin(async move {
            let rp = rp(ctx)?;
            let Ok(answer) = serde_json::from_str::<AssertionResponse>(response) else { return Ok(Verification::Rejected) };
            let Some(CeremonyState::SecondFactor(state)) = take(ctx, &answer.ceremony, Some(user.id), now).await? else {
                return Ok(Verification::Rejected);
            };
            let id = BASE64URL_NOPAD.encode(&answer.credential.raw_id);
            // The row only (no need to open every sealed record): the state names the allowed credentials.
            let owned = enrolled.iter().find(|c| is_webauthn(c) && c.public_key_id.as_deref() == Some(&id));
            let Some(c) = owned.filter(|c| c.flagged_at.is_none()) else {
                return Ok(Verification::Rejected);
            };
            match rp.webauthn.finish_securitykey_authentication(&answer.credential, &state) {
                Ok(result) => record_use(ctx, c, result.counter(), now).await,
                Err(WebauthnError::CredentialPossibleCompromise) => flag(ctx, c, 0, now).await,
                Err(e) => {
                    tracing::info!(user = %user.id, error = %e, "WebAuthn assertion refused");
                    Ok(Verification::Rejected)
                }
            }
        })
    }
}

/// How a passwordless passkey sign-in went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeySignIn {
    /// A user-verified assertion from this user's passkey.
    Accepted {
        /// Whose passkey.
        user: UserId,
        /// The passkey (credential id).
        credential: String,
    },
    /// Anything else: unknown or foreign credential, no user verification, bad signature, used ceremony.
    Rejected,
    /// The passkey's counter went backwards; it is now disabled.
    ClonedAuthenticator {
        /// Whose passkey.
        user: UserId,
        /// The passkey (credential id).
        credential: String,
        /// Its name.
        name: String,
    },
}

/// Starts a passwordless sign-in: any discoverable credential of this site may answer.
pub async fn begin_passkey_sign_in<S: MfaStore>(ctx: &FactorContext<'_, S>, now: UnixTime) -> FactorResult<PublicKeyChallenge> {
    let (options, state) = rp(ctx)?.webauthn.start_discoverable_authentication().map_err(webauthn_failed)?;
    save(ctx, None, &CeremonyState::Passwordless(state), options, now).await
}

/// Finishes a passwordless sign-in. Only a passkey (not a second-factor
/// security key) with user verification signs in without a password.
pub async fn finish_passkey_sign_in<S: MfaStore>(
    ctx: &FactorContext<'_, S>,
    ceremony: &str,
    response: &str,
    now: UnixTime,
) -> FactorResult<PasskeySignIn> {
    let rp = rp(ctx)?;
    let Some(CeremonyState::Passwordless(state)) = take(ctx, ceremony, None, now).await? else { return Ok(PasskeySignIn::Rejected) };
    let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(response) else { return Ok(PasskeySignIn::Rejected) };
    let Ok((handle, raw_id)) = rp.webauthn.identify_discoverable_authentication(&credential) else { return Ok(PasskeySignIn::Rejected) };
    let Some(c) = ctx.store.credential_by_public_key_id(&BASE64URL_NOPAD.encode(raw_id)).await? else {
        return Ok(PasskeySignIn::Rejected);
    };
    // The user handle the authenticator returned must name the credential's owner.
    if c.user_id.0 != handle || c.kind != FactorKind::Passkey || c.flagged_at.is_some() || c.confirmed_at.is_none() {
        return Ok(PasskeySignIn::Rejected);
    }
    let Some(record) = open(ctx, &c) else { return Ok(PasskeySignIn::Rejected) };
    let verification = match rp.webauthn.finish_discoverable_authentication_v2(&credential, state, &record) {
        Ok(result) if result.user_verified() => record_use(ctx, &c, result.counter(), now).await?,
        Ok(_) => Verification::Rejected,
        Err(WebauthnError::CredentialPossibleCompromise) => flag(ctx, &c, 0, now).await?,
        Err(e) => {
            tracing::info!(user = %c.user_id, error = %e, "passkey sign-in refused");
            Verification::Rejected
        }
    };
    Ok(match verification {
        Verification::Accepted { .. } => PasskeySignIn::Accepted { user: c.user_id, credential: c.id },
        Verification::Rejected => PasskeySignIn::Rejected,
        Verification::ClonedAuthenticator { credential, name } => PasskeySignIn::ClonedAuthenticator { user: c.user_id, credential, name },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_address_issuer_has_no_relying_party() {
        assert!(RelyingParty::new("http://127.0.0.1:8080", "Portcullis", &[]).unwrap().is_none());
        assert!(RelyingParty::new("https://id.example.com", "Portcullis", &[]).unwrap().is_some());
        assert!(RelyingParty::new("http://localhost:8080", "Portcullis", &[]).unwrap().is_some());
    }

    #[test]
    fn a_bad_attestation_ca_is_a_configuration_error() {
        let allowed = [AllowedAuthenticator { aaguid: Uuid::nil(), name: "Key".into(), ca_pem: b"not a certificate".to_vec() }];
        let err = RelyingParty::new("https://id.example.com", "Portcullis", &allowed).unwrap_err();
        assert!(err.contains("attestation CA of Key"), "{err}");
    }
}
