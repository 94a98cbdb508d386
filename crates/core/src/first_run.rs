//! First run without default credentials. While no administrator exists,
//! `serve` logs a one-time setup link (a random 256-bit token, stored only as
//! its digest, for an hour). Its page creates the first administrator, who must
//! use MFA: the sign-in the page begins is made for the admin console (a
//! second factor, neither an emailed code nor a remembered browser), so it
//! goes straight to setting one up, and the console opens after it.
//! Once an administrator exists, or one was ever made through a link, no link
//! is given and none works (so deleting that administrator does not reopen
//! setup; the command line does what is needed then). `portcullis user
//! create --admin` stays the scripted way.

use serde_json::json;

use crate::account_store::{FirstAdmin, Stores};
use crate::accounts::capability;
use crate::audit::{AuditKind, NewAuditEvent, RequestOrigin};
use crate::clock::UnixTime;
use crate::email::EmailAddress;
use crate::error::AccountError;
use crate::registration::SignUpForm;
use crate::secrets::{random_token, token_digest};
use crate::session::{AuthEvent, AuthMethod, AuthRecord};
use crate::sign_in::{SessionUse, SignInOutcome, demand, plan};
use crate::user::User;

capability!(
    /// The first administrator, through a setup link.
    FirstRun,
    first_run
);

/// How long a setup link works.
pub const SETUP_LINK_SECONDS: i64 = 3600;

impl<S: Stores> FirstRun<'_, S> {
    /// A new setup link (the page's full URL with its token), or `None` when
    /// setup is closed: an administrator exists, or one was made through a link.
    pub async fn setup_link(&self, now: UnixTime) -> Result<Option<String>, AccountError> {
        if !self.store.setup_open().await? {
            return Ok(None);
        }
        let token = random_token();
        self.store.save_setup_link(&token_digest(&token), now, now + SETUP_LINK_SECONDS).await?;
        Ok(Some(format!("{}?token={token}", self.settings.links.setup)))
    }

    /// Whether a setup link works now (without using it: a link previewer
    /// that opens it must not spend it).
    pub async fn check_setup_link(&self, token: &str, now: UnixTime) -> Result<(), AccountError> {
        match self.store.setup_link_usable(&token_digest(token), now).await? {
            true => Ok(()),
            false => Err(AccountError::SetupLinkUnusable),
        }
    }

    /// Creates the first administrator through setup link `token` (address
    /// confirmed, MFA required), then begins its sign-in as after a password:
    /// with no factor yet, that sign-in waits for one to be set up.
    pub async fn create_first_admin(
        &self,
        token: &str,
        form: SignUpForm<'_>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        // A wrong token costs no password hash.
        self.check_setup_link(token, now).await?;
        let email = EmailAddress::parse(form.email)?;
        let name = form.name.trim();
        self.registration().check_new_password(&email, name, form.password, form.confirm).await?;
        let mut admin = User {
            email_verified_at: Some(now),
            is_admin: true,
            mfa_required: true,
            language: Some(form.language),
            ..User::new_account(email, name, String::new(), now)
        };
        // Before the hash: a refused administrator costs no Argon2 either.
        self.console_reachable(&admin, origin, now).await?;
        admin.password_hash = self.registration().hash(form.password).await?;
        let acting = RequestOrigin { actor: Some(admin.id), ..origin.clone() };
        let event = NewAuditEvent::new(AuditKind::UserCreated, Some(admin.id), &acting, json!({ "admin": true, "setup_link": true }), now);
        match self.store.create_first_admin(&token_digest(token), &admin, &event, now).await? {
            FirstAdmin::Created => {}
            FirstAdmin::LinkUnusable => return Err(AccountError::SetupLinkUnusable),
            FirstAdmin::EmailTaken => return Err(AccountError::EmailInUse),
        }
        // Made for the console: what it counts (no emailed code, no remembered browser) is set up now.
        self.sign_in().after_first_step_for(SessionUse::Admin, &admin, (AuthMethod::Password, None), None, origin, now).await
    }

    /// Refuses, before anything is written (the link stays usable), an
    /// administrator whose sign-in could not reach the console: a rule that
    /// denies it, or no first factor the console counts to set up (a
    /// phishing-resistant demand, which inline setup never meets, or none enabled).
    async fn console_reachable(&self, admin: &User, origin: &RequestOrigin, now: UnixTime) -> Result<(), AccountError> {
        let assessment = self.assess(admin, origin, now).await?;
        let facts = self.demand_facts(admin, SessionUse::Admin, false, now);
        let wanted = match demand(assessment.action(), facts) {
            Ok(Some(wanted)) => wanted,
            Ok(None) => return Ok(()),
            Err(()) => return Err(AccountError::SignInDenied),
        };
        let proven = AuthRecord { events: vec![AuthEvent::performed(AuthMethod::Password, now)] };
        let (account, _) = self.sign_in().account_factors(admin, now).await?;
        plan(&wanted, &proven, &account, &self.sign_in().operator_factors(), now).map(|_| ()).map_err(AccountError::from)
    }
}
