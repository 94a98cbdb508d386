//! The sign-in as one explicit state machine.
//!
//! A first step (a password, an emailed code, a passkey) proves something;
//! what the sign-in must prove is its [`Demand`], decided once by [`demand`]
//! from the operator's adaptive rule, the account (a factor enrolled, MFA
//! required) and the application (its floor, `acr_values`, the factors it
//! counts). If the first step meets the demand, a session opens. Otherwise a
//! [`PendingSignIn`] is stored that records exactly what it waits for
//! ([`Waiting`]: the steps that can finish it, and the credential kinds the
//! user may set up instead), computed once by [`plan`]:
//!
//! ```text
//!                   first step (password · emailed code · passkey)
//!                                   │
//!              demand() ── Denied ──┼──▶ refused (403, audited)
//!                                   │
//!           met by what is proven ──┼──▶ session (remembered browser counts if the demand accepts it)
//!                                   │
//!                          plan() ──┴── nothing fits ──▶ refused (403: what to add)
//!                                   │
//!                                   ▼
//!   ┌──────────── PendingSignIn { demand, waiting: { steps, enroll }, purpose } ──────────┐
//!   │ ShowSteps, Challenge(k), Answer(step)   when step ∈ steps                            │
//!   │ ShowEnrollment, BeginEnrollment(kind),  when kind ∈ enroll (accounts with no factor,  │
//!   │ FinishEnrollment(kind)                  never for a phishing-resistant demand)        │
//!   │ anything else                           refused: 403, nothing written, audited       │
//!   └──────────────────────────────────────────────────────────────────────────────────────┘
//!        │ wrong answer: counted (5 per pending sign-in, then it takes no more;
//!        │               10 per account in the lock window, then the account locks)
//!        │ right answer, demand met ──▶ NewSession: a session opens
//!        │                              StepUp(S): session S proves more, under a new token
//!        └ right answer, demand not yet met ──▶ the same pending sign-in waits for the rest
//! ```
//!
//! A step-up of an existing session (an application asks for more, the admin
//! console, a page the session's proof does not cover) is the same machine
//! with [`Purpose::StepUp`]. No route advances a pending sign-in except by
//! asking [`PendingSignIn::permits`] for its one [`Transition`].
//!
//! Everything in this file is pure (time and stored facts are parameters);
//! `flow.rs` does the reading and writing around it.

mod approvals;
pub use approvals::ApprovalState;
mod failures;
pub(crate) use failures::Forget;
mod first_step;
mod flow;

pub use first_step::{SignIn, SignInOutcome, remembered_browser_id};

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::factors::{CodeDestination, FactorKey, FactorKind};
use crate::io::StoreResult;
use crate::methods::{PASSWORD_STEP, StepFacts};
use crate::oauth::ClientPolicy;
use crate::policy::RuleAction;
use crate::session::{ACR_MFA, ACR_PHR, AuthEvent, AuthMethod, AuthRecord, FactorClass};
use crate::user::{User, UserId};

/// What the second-step page shows for a pending sign-in.
#[derive(Debug, Clone)]
pub struct SecondStepView {
    /// Whose sign-in.
    pub user: User,
    /// The step shown (the one asked for if it is on offer, else the strongest).
    pub shown: Step,
    /// Every step on offer, strongest first ("Try another method" lists them).
    pub steps: Vec<Step>,
    /// Kinds the user may set up instead.
    pub enroll: Vec<FactorKind>,
    /// Where the steps on offer can send their code, for those with a
    /// choice of destination (phone numbers).
    pub destinations: Vec<(Step, Vec<CodeDestination>)>,
}

impl SecondStepView {
    /// Where `step` can send its code, if the user has a choice.
    pub fn destinations_of(&self, step: Step) -> &[CodeDestination] {
        self.destinations.iter().find(|(s, _)| *s == step).map_or(&[], |(_, d)| d.as_slice())
    }
}

/// A finished sign-in or step-up.
#[derive(Debug, Clone)]
pub struct SecondStepDone {
    /// The session's cookie token: a new session's, or the stepped-up
    /// session's new one (a session that proves more gets a new token).
    pub session_token: String,
    /// The user.
    pub user: User,
    /// Recovery codes to show now (first factor set up inline).
    pub new_recovery_codes: Option<Vec<String>>,
    /// Value of the remember-this-browser cookie to set, if the user asked.
    pub remember_cookie: Option<String>,
}

/// What an accepted step led to.
#[derive(Debug, Clone)]
pub enum StepOutcome {
    /// The demand is met.
    Done(Box<SecondStepDone>),
    /// Right, but the demand needs another step (the same pending sign-in waits for it).
    Continue,
}

/// How long a sign-in may wait for its next step.
pub const PENDING_SIGN_IN_SECONDS: i64 = 600;

/// Answers one pending sign-in takes; then it is spent and the user starts again.
pub const MAX_ANSWERS: u32 = 5;

/// How strong a sign-in must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Two kinds of factor (`acr` `mfa`).
    Mfa,
    /// Two kinds of factor, one of them bound to this site's origin (`acr` `phr`).
    PhishingResistant,
}

impl Level {
    /// The `acr` value of this level.
    pub fn acr(self) -> &'static str {
        match self {
            Self::Mfa => ACR_MFA,
            Self::PhishingResistant => ACR_PHR,
        }
    }
}

/// What a sign-in, or a use of a session, must prove, and what counts towards it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    /// The level to reach.
    pub level: Level,
    /// The application's policy (which factors count, whether remembered browsers do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientPolicy>,
    /// Emailed codes do not count: the admin console, a password recently set
    /// by a reset link, or the operator does not count email as a factor.
    #[serde(default)]
    pub no_email: bool,
    /// Remembered browsers do not count (the admin console).
    #[serde(default)]
    pub no_remembered: bool,
}

impl Demand {
    /// A demand of `level` and nothing else.
    pub fn of(level: Level) -> Self {
        Self { level, client: None, no_email: false, no_remembered: false }
    }

    /// The steps of `auth` that count towards this demand at `now`.
    pub fn counted(&self, auth: &AuthRecord, now: UnixTime) -> AuthRecord {
        let auth = match &self.client {
            Some(p) => p.effective(auth, now),
            None => auth.clone(),
        };
        AuthRecord {
            events: auth
                .events
                .into_iter()
                .filter(|e| !((self.no_email && e.method == AuthMethod::EMAIL_OTP) || (self.no_remembered && e.remembered)))
                .collect(),
        }
    }

    /// Whether `auth` meets this demand at `now`.
    pub fn met_by(&self, auth: &AuthRecord, now: UnixTime) -> bool {
        self.counted(auth, now).satisfies(self.level.acr())
    }

    /// Whether a step with `method` counts towards this demand at all.
    fn counts(&self, method: AuthMethod) -> bool {
        !(self.no_email && method == AuthMethod::EMAIL_OTP) && self.client.as_ref().is_none_or(|p| p.allows(method))
    }

    /// What `auth` still lacks for this demand.
    fn missing(&self, auth: &AuthRecord, now: UnixTime) -> Missing {
        let counted = self.counted(auth, now);
        let has = |class| counted.events.iter().any(|e| e.proves(class));
        Missing {
            knowledge: !has(FactorClass::Knowledge),
            possession: !has(FactorClass::Possession),
            phishing_resistant: self.level == Level::PhishingResistant && !counted.events.iter().any(AuthEvent::resists_phishing),
        }
    }

    /// Whether a step with `method` (`weak`: the operator does not count it as
    /// a factor) brings `auth` closer to this demand.
    fn helps(&self, auth: &AuthRecord, method: AuthMethod, weak: bool, now: UnixTime) -> bool {
        if weak || !self.counts(method) {
            return false;
        }
        let m = self.missing(auth, now);
        // While a phishing-resistant step is missing, only one helps there:
        // it proves possession too, so an app's code would be a detour.
        (m.knowledge && method.proves(FactorClass::Knowledge))
            || (m.phishing_resistant && method.phishing_resistant())
            || (!m.phishing_resistant && m.possession && method.proves(FactorClass::Possession))
    }
}

/// What a record lacks for a demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Missing {
    knowledge: bool,
    possession: bool,
    phishing_resistant: bool,
}

/// One way to take the next step of a pending sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The account's password (a sign-in begun with an emailed code has no knowledge factor yet).
    Password,
    /// A second factor.
    Factor(FactorKey),
}

impl Step {
    /// Its names, words and the answer its page asks for.
    pub fn facts(self) -> StepFacts {
        match self {
            Self::Password => PASSWORD_STEP,
            Self::Factor(k) => k.facts(),
        }
    }

    /// The form key of this step (`password`, or the factor's key).
    pub fn as_str(self) -> &'static str {
        self.facts().name
    }

    /// Parses a form key.
    pub fn parse(s: &str) -> Option<Self> {
        if s == PASSWORD_STEP.name { Some(Self::Password) } else { FactorKey::parse(s).map(Self::Factor) }
    }

    /// What a success adds to the record.
    pub fn method(self) -> AuthMethod {
        match self {
            Self::Password => AuthMethod::Password,
            Self::Factor(k) => k.method(),
        }
    }
}

/// What a pending sign-in waits for. Never both empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// Steps that can take it further, strongest first.
    pub steps: Vec<Step>,
    /// Credential kinds the user may set up to take the step instead (an
    /// account with no second factor yet).
    pub enroll: Vec<FactorKind>,
}

/// What finishing a pending sign-in does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Opens a new session.
    NewSession,
    /// Extends an existing session (its cookie digest); the session gets a new token.
    StepUp {
        /// Digest of the session's current cookie token.
        session_digest: String,
    },
}

/// A sign-in waiting for its next step (or for the user to set up a factor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// Whose sign-in.
    pub user_id: UserId,
    /// What has been proven so far.
    pub auth: AuthRecord,
    /// What finishing it does.
    pub purpose: Purpose,
    /// What it must prove.
    pub demand: Demand,
    /// What it waits for (computed by [`plan`] when it began or last moved on).
    pub waiting: Waiting,
    /// The application it is for, if any.
    pub client_id: Option<String>,
    /// The adaptive-rule assessment of the first step (risk, rule), recorded with the finished sign-in.
    pub assessment: serde_json::Value,
    /// Answers taken so far (see [`MAX_ANSWERS`]).
    pub answers: u32,
    /// The account's [`User::security_epoch`] when it began.
    pub security_epoch: i64,
    /// When it began.
    pub created_at: UnixTime,
    /// When it lapses.
    pub expires_at: UnixTime,
}

impl PendingSignIn {
    /// A sign-in by `user` (as read when it began) begun now toward
    /// `demand`, waiting for `waiting`, with no answer yet; it lapses after
    /// [`PENDING_SIGN_IN_SECONDS`].
    pub fn begin(
        (user, auth): (&User, AuthRecord),
        (purpose, demand, waiting): (Purpose, Demand, Waiting),
        client_id: Option<String>,
        assessment: serde_json::Value,
        now: UnixTime,
    ) -> Self {
        Self {
            user_id: user.id,
            auth,
            purpose,
            demand,
            waiting,
            client_id,
            assessment,
            answers: 0,
            security_epoch: user.security_epoch,
            created_at: now,
            expires_at: now + PENDING_SIGN_IN_SECONDS,
        }
    }

    /// Whether it waits only for the user to set up a factor.
    pub fn waits_for_enrollment(&self) -> bool {
        self.waiting.steps.is_empty()
    }
}

/// A request to move a pending sign-in on: each route asks for exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Show the second-step page (or, with no step, send to enrollment).
    ShowSteps,
    /// Prepare factor `k`'s challenge: send a code, build a WebAuthn request.
    Challenge(FactorKey),
    /// Answer with this step.
    Answer(Step),
    /// Show the enrollment choices.
    ShowEnrollment,
    /// Start setting up a credential of this kind.
    BeginEnrollment(FactorKind),
    /// Finish setting up a credential of this kind (which also takes the step).
    FinishEnrollment(FactorKind),
}

impl Transition {
    /// A short name for the audit log.
    pub fn describe(self) -> String {
        match self {
            Self::ShowSteps => "show_steps".into(),
            Self::Challenge(k) => format!("challenge:{k}"),
            Self::Answer(s) => format!("answer:{}", s.as_str()),
            Self::ShowEnrollment => "show_enrollment".into(),
            Self::BeginEnrollment(k) => format!("begin_enrollment:{}", k.as_str()),
            Self::FinishEnrollment(k) => format!("finish_enrollment:{}", k.as_str()),
        }
    }
}

impl PendingSignIn {
    /// Whether this pending sign-in allows `t` now.
    pub fn permits(&self, t: Transition) -> bool {
        let w = &self.waiting;
        match t {
            Transition::ShowSteps => !w.steps.is_empty() || !w.enroll.is_empty(),
            Transition::Challenge(k) => w.steps.contains(&Step::Factor(k)),
            Transition::Answer(step) => w.steps.contains(&step),
            Transition::ShowEnrollment => !w.enroll.is_empty(),
            Transition::BeginEnrollment(kind) | Transition::FinishEnrollment(kind) => w.enroll.contains(&kind),
        }
    }
}

/// What the machine knows of the account when it plans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFactors {
    /// Factors the user can answer with now (each factor's own check), any order.
    pub usable: Vec<FactorKey>,
    /// The account has a second-factor credential (even a disabled one): it
    /// is never offered inline enrollment, which would let a password alone
    /// add a factor to an account that has one.
    pub has_credential: bool,
    /// An operator requires MFA of this account (or its role, or everyone).
    pub mfa_required: bool,
}

/// What the operator allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorFactors {
    /// Factors turned on (`[factors]`, and WebAuthn only with a relying party).
    pub enabled: Vec<FactorKey>,
    /// Credential kinds users may set up.
    pub enrollable: Vec<FactorKind>,
    /// Emailed codes count as a factor (`[factors] email_counts_as_mfa`).
    pub email_counts: bool,
}

/// Why no pending sign-in could be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Only a security key or passkey would do, and the user has none.
    PhishingResistantFactorNeeded,
    /// The application accepts only these factors, and the user has none of them.
    OnlyFactors(Vec<FactorKey>),
    /// The account has factors, but none of them can be used here.
    NoUsableFactor,
    /// The account must use a second factor, but none can be set up here.
    NothingToEnroll,
}

impl From<Refusal> for AccountError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::PhishingResistantFactorNeeded => AccountError::PhishingResistantFactorNeeded,
            Refusal::OnlyFactors(keys) => AccountError::FactorRequiredByApplication { factors: keys },
            Refusal::NoUsableFactor | Refusal::NothingToEnroll => AccountError::NoUsableFactor,
        }
    }
}

/// What a use of a session is for.
#[derive(Debug, Clone, Copy)]
pub enum SessionUse<'a> {
    /// An authorization request of this application.
    Client {
        /// Its id (rules may name it).
        id: &'a str,
        /// Its policy.
        policy: &'a ClientPolicy,
        /// The `acr` values that would satisfy the request (any one of them; empty: none asked).
        acceptable_acr: &'a [&'static str],
    },
    /// Portcullis's own pages (account, security).
    OwnPages,
    /// The security page's changes to how the account signs in (factors,
    /// recovery codes): as [`Self::OwnPages`], except that no rule lowers
    /// what the account itself demands. A rule lets a password alone in
    /// (from the office network, or for one application); it must not let
    /// the password alone add or remove the factors it stood in for.
    FactorChanges,
    /// The admin console.
    Admin,
}

impl SessionUse<'_> {
    /// The application, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::Client { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// The inputs of [`demand`] beyond the rule.
#[derive(Debug, Clone, Copy)]
pub struct DemandFacts<'a> {
    /// What the session or sign-in is for.
    pub using: SessionUse<'a>,
    /// The account has a second factor.
    pub has_credential: bool,
    /// An operator requires MFA of this account.
    pub mfa_required: bool,
    /// Emailed codes may not count here (a password recently reset by link).
    pub email_blocked: bool,
    /// The operator counts emailed codes as a factor.
    pub email_counts: bool,
}

/// What a sign-in or a use of a session must prove: `Err(())` when the
/// matching rule denies it, `Ok(None)` when one step is enough.
///
/// The rule decides first (deny; one step enough; MFA; phishing-resistant);
/// with no rule, an account with a factor, or one that must use MFA, needs
/// MFA. The application's floor and requested `acr_values`, and the admin
/// console's own rule (MFA without email or remembered browsers), can only
/// raise that.
#[allow(clippy::result_unit_err)]
pub fn demand(rule: Option<RuleAction>, f: DemandFacts<'_>) -> Result<Option<Demand>, ()> {
    let account_default = f.has_credential || f.mfa_required;
    let base = match rule {
        Some(RuleAction::Deny) => return Err(()),
        // One step is enough, except that an account required to use MFA
        // without a factor yet still sets one up.
        Some(RuleAction::AllowSingleFactor) => (!f.has_credential && f.mfa_required).then_some(Level::Mfa),
        Some(RuleAction::RequireMfa) => Some(Level::Mfa),
        Some(RuleAction::RequirePhishingResistant) => Some(Level::PhishingResistant),
        None => account_default.then_some(Level::Mfa),
    };
    let (client, app_level, admin) = match f.using {
        SessionUse::Client { policy, acceptable_acr, .. } => {
            let level = if acceptable_acr.contains(&ACR_MFA) {
                Some(Level::Mfa)
            } else if acceptable_acr.contains(&ACR_PHR) {
                Some(Level::PhishingResistant)
            } else {
                None
            };
            // What the application counts binds the demand when it asks for a
            // level, or refuses remembered browsers ("always a fresh code").
            // Otherwise the account's own demand is judged as it stands, and
            // the application's counting shapes only the claims in its tokens.
            let binding = level.is_some() || !policy.allow_remember || policy.remember_browser_days.is_some();
            (binding.then(|| policy.clone()), level, false)
        }
        SessionUse::OwnPages | SessionUse::FactorChanges => (None, None, false),
        SessionUse::Admin => (None, Some(Level::Mfa), true),
    };
    let Some(level) = [base, app_level].into_iter().flatten().max() else { return Ok(None) };
    Ok(Some(Demand { level, client, no_email: admin || f.email_blocked || !f.email_counts, no_remembered: admin }))
}

/// What a pending sign-in toward `demand` waits for, given what `proven`
/// already shows; `Err` when nothing the user has or may set up would do.
pub fn plan(
    demand: &Demand,
    proven: &AuthRecord,
    account: &AccountFactors,
    operator: &OperatorFactors,
    now: UnixTime,
) -> Result<Waiting, Refusal> {
    let weak = |m: AuthMethod| m == AuthMethod::EMAIL_OTP && !operator.email_counts;
    let mut steps = Vec::new();
    // Only a sign-in begun without the password (an emailed code) lacks knowledge:
    // no number of possession factors would make it multi-factor.
    if demand.helps(proven, AuthMethod::Password, false, now) {
        steps.push(Step::Password);
    }
    for key in FactorKey::ALL {
        let method = key.method();
        if account.usable.contains(&key) && operator.enabled.contains(&key) && demand.helps(proven, method, weak(method), now) {
            steps.push(Step::Factor(key));
        }
    }
    // Setting up a first factor inline finishes a sign-in only for an account
    // without one, and never for a phishing-resistant demand: whoever has the
    // password could register their own key.
    let enroll: Vec<FactorKind> = if account.has_credential || demand.level == Level::PhishingResistant {
        Vec::new()
    } else {
        FactorKind::ALL
            .into_iter()
            .filter(|k| operator.enrollable.contains(k) && operator.enabled.contains(&k.factor()))
            .filter(|k| demand.helps(proven, k.factor().method(), false, now))
            .collect()
    };
    // Only a plan that can end: taking every step offered (or setting up a
    // factor) must meet the demand, or the user would go round in circles.
    let reachable = |methods: &mut dyn Iterator<Item = AuthMethod>| {
        let all = methods.fold(proven.clone(), |auth, m| auth.with(m, now));
        demand.met_by(&all, now)
    };
    let by_steps = !steps.is_empty() && reachable(&mut steps.iter().map(|s| s.method()));
    let by_enrolling = enroll.first().is_some_and(|k| reachable(&mut steps.iter().map(|s| s.method()).chain([k.factor().method()])));
    if by_steps || by_enrolling {
        return Ok(Waiting { steps, enroll });
    }
    Err(if demand.level == Level::PhishingResistant {
        Refusal::PhishingResistantFactorNeeded
    } else if let Some(allowed) = demand.client.as_ref().filter(|p| !p.allowed_factors.is_empty()) {
        Refusal::OnlyFactors(allowed.allowed_factors.iter().filter_map(|f| FactorKey::parse(f)).collect())
    } else if account.has_credential {
        Refusal::NoUsableFactor
    } else {
        Refusal::NothingToEnroll
    })
}

/// Persistence of pending sign-ins.
pub trait SignInStore: Clone + Send + Sync + 'static {
    /// Stores a pending sign-in under the digest of its cookie token.
    fn save_pending_sign_in(&self, digest: &str, p: &PendingSignIn) -> impl Future<Output = StoreResult<()>> + Send;
    /// A pending sign-in that has not lapsed, with its user (one read: every
    /// second-step page and form needs both).
    fn pending_sign_in(&self, digest: &str, now: UnixTime) -> impl Future<Output = StoreResult<Option<(PendingSignIn, User)>>> + Send;
    /// Counts one answer against a live pending sign-in, in one conditional
    /// `UPDATE`: the answers taken including this one, or `None` when it has
    /// lapsed, is gone, or has already taken `max` (concurrent answers cannot
    /// exceed it).
    fn take_pending_answer(&self, digest: &str, max: u32, now: UnixTime) -> impl Future<Output = StoreResult<Option<u32>>> + Send;
    /// Ends a pending sign-in atomically; true for exactly one caller.
    fn take_pending_sign_in(&self, digest: &str) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Moves a pending sign-in on to `next` (its record of steps and what it
    /// waits for) if it still holds the record `before` had: true for exactly
    /// one of the requests that read `before`. Its answers taken stay as they
    /// are (concurrent answers may have taken more meanwhile).
    fn continue_pending_sign_in(
        &self,
        digest: &str,
        before: &PendingSignIn,
        next: &PendingSignIn,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Ends every pending sign-in of a user (what they waited for no longer
    /// holds: a new password, an account disabled, factors reset).
    fn delete_pending_sign_ins(&self, user: UserId) -> impl Future<Output = StoreResult<()>> + Send;
    /// Extends session `old_digest` of `user` with `auth` and moves it to a
    /// new cookie digest (a session that proves more gets a new token); false
    /// if the session is gone.
    fn upgrade_session(
        &self,
        old_digest: &str,
        new_digest: &str,
        user: UserId,
        auth: &AuthRecord,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

#[cfg(test)]
mod tests;
