//! The admin console (`/admin`): users, applications, audit log. Only for
//! admins, and only with a second factor performed in this session (a
//! password-only session is stepped up, not refused). Every change goes
//! through the same domain calls as the command line and is recorded in the
//! audit log with the acting admin.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use portcullis_core::AccountError;
use portcullis_core::audit::{AuditFilter, AuditKind, RequestOrigin};
use portcullis_core::oauth::{ClientPolicy, FACTOR_KEYS, MfaPolicy, SigningAlg};
use portcullis_core::operators::{AccountAction, AdminAccess, ConsoleRole};
use portcullis_core::sessions::ActiveSession;
use portcullis_oidc::clients::NewClient;
use serde::Deserialize;

use super::current_session;
use crate::error::{AppError, account_error_msg};
use crate::i18n::{Msg, tr};
use crate::request::{Browser, HtmlForm, see_other};
use crate::state::AppState;

/// How many users a search shows, and events the audit page shows.
const PAGE_SIZE: u32 = 200;

/// The console user's session and role, or the response that stands in for
/// the page: sign in, step up, sign in again before a change, or a refusal
/// (403) for a non-admin and for an auditor's change. `change`: the request
/// acts (a POST), not only looks.
async fn admin_session(
    state: &AppState,
    browser: &Browser,
    here: &'static str,
    change: bool,
) -> Result<Result<(ActiveSession, ConsoleRole), Response>, AppError> {
    let session = current_session(state, browser).await?.ok_or(AppError::SignInRequired { next: here })?;
    let change = change.then_some(here);
    match state.accounts().operators().admin_access(&session, change, &browser.origin(), state.now()).await? {
        AdminAccess::Granted(role) => Ok(Ok((session, role))),
        AdminAccess::StepUp(demand) => Ok(Err(super::second_step::step_up(state, browser, &session, here, (demand, None)).await?)),
        AdminAccess::Reauthenticate => Ok(Err(see_other(&format!("/login?reauth=admin&next={}", super::second_step::encode(here))))),
        AdminAccess::ReadOnly => Err(AppError::Forbidden("error-auditor-read-only".into())),
        AdminAccess::NotAdmin => Err(AppError::Forbidden("error-not-admin".into())),
    }
}

/// The console user's session (and role); otherwise returns the response that stands in for the page.
macro_rules! admin_or_return {
    ($state:expr, $browser:expr, $here:literal) => {
        admin_or_return!($state, $browser, $here, false)
    };
    ($state:expr, $browser:expr, $here:literal, $change:expr) => {
        match admin_session(&$state, &$browser, $here, $change).await? {
            Ok(session_and_role) => session_and_role,
            Err(response) => return Ok(response),
        }
    };
}

/// Whether the page leaves out every action (an auditor's console).
fn read_only(role: ConsoleRole) -> bool {
    role == ConsoleRole::Auditor
}

/// Who is acting, for the audit log.
fn acting(browser: &Browser, session: &ActiveSession) -> RequestOrigin {
    RequestOrigin { actor: Some(session.user.id), ..browser.origin() }
}

#[derive(Deserialize)]
pub struct AppAccessQuery {
    email: String,
}

/// GET /admin/users/apps?email=…: the applications holding access to one account.
pub async fn user_apps(State(state): State<AppState>, browser: Browser, Query(q): Query<AppAccessQuery>) -> Result<Response, AppError> {
    let (_, role) = admin_or_return!(state, browser, "/admin/users");
    user_apps_page(&state, &browser, role, &q.email, None).await
}

async fn user_apps_page(
    state: &AppState,
    browser: &Browser,
    role: ConsoleRole,
    email: &str,
    notice: Option<String>,
) -> Result<Response, AppError> {
    let user = state.accounts().operators().find_user(email).await?;
    let apps = super::security::app_access_context(state, user.id).await?;
    let ctx =
        context! { signed_in => true, section => "users", read_only => read_only(role), apps_of => user.email.as_str(), apps, notice };
    Ok(browser.page(StatusCode::OK, "admin.html", ctx))
}

#[derive(Deserialize)]
pub struct RemoveAppAccessForm {
    email: String,
    client_id: String,
}

/// POST /admin/users/apps/remove: takes one application's access to one account away.
pub async fn remove_user_app(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<RemoveAppAccessForm>,
) -> Result<Response, AppError> {
    let (session, role) = admin_or_return!(state, browser, "/admin/users", true);
    let user = state.accounts().operators().find_user(&form.email).await?;
    let removed = state.provider().remove_app_access(user.id, &form.client_id, &acting(&browser, &session), state.now()).await?;
    if !removed {
        return Err(AccountError::NotFound.into());
    }
    let notice = tr(Msg::new("notice-admin-app-removed").arg("client", &form.client_id).arg("email", user.email.as_str()));
    user_apps_page(&state, &browser, role, &form.email, Some(notice)).await
}

/// GET /admin
pub async fn home() -> Response {
    see_other("/admin/users")
}

#[derive(Deserialize)]
pub struct UserQuery {
    #[serde(default)]
    q: String,
}

async fn users_page(
    state: &AppState,
    browser: &Browser,
    role: ConsoleRole,
    q: &str,
    outcome: Result<String, AccountError>,
) -> Result<Response, AppError> {
    let now = state.now();
    let mut users = Vec::new();
    let found = state.accounts().operators().search_users(q, PAGE_SIZE).await?;
    let locked = state.accounts().operators().locked_after_failures(&found, now).await?;
    for (u, failures_locked) in found.into_iter().zip(locked) {
        let disabled = u.disabled_at.is_some();
        use AccountAction as A;
        let offered = [
            if disabled || failures_locked { (A::Unlock, "action-unlock") } else { (A::Lock, "action-lock") },
            (A::ResetMfa, "action-reset-mfa"),
            if u.mfa_required { (A::RequireMfa(false), "action-stop-requiring-mfa") } else { (A::RequireMfa(true), "action-require-mfa") },
            if u.is_admin { (A::Admin(false), "action-remove-admin") } else { (A::Admin(true), "action-make-admin") },
            if u.is_auditor { (A::Auditor(false), "action-remove-auditor") } else { (A::Auditor(true), "action-make-auditor") },
        ];
        let actions: Vec<(&str, String)> = offered.iter().map(|(a, label)| (a.name(), tr(*label))).collect();
        users.push(context! {
            email => u.email.as_str(), name => &u.name, admin => u.is_admin, auditor => u.is_auditor, disabled, failures_locked,
            mfa_required => u.mfa_required, actions,
        });
    }
    let (status, notice, error) = match outcome {
        Ok(n) => (StatusCode::OK, (!n.is_empty()).then_some(n), None),
        Err(e) => match crate::error::form_problem(&e) {
            Some((status, _)) => (status, None, Some(tr(account_error_msg(&e)))),
            None => return Err(e.into()),
        },
    };
    Ok(browser.page(
        status,
        "admin.html",
        context! { signed_in => true, section => "users", read_only => read_only(role), q, users, notice, error },
    ))
}

/// GET /admin/users?q=…
pub async fn users(State(state): State<AppState>, browser: Browser, Query(q): Query<UserQuery>) -> Result<Response, AppError> {
    let (_, role) = admin_or_return!(state, browser, "/admin/users");
    users_page(&state, &browser, role, &q.q, Ok(String::new())).await
}

#[derive(Deserialize)]
pub struct UserActionForm {
    email: String,
    action: String,
    #[serde(default)]
    q: String,
}

/// POST /admin/users: one action on one user.
pub async fn user_action(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<UserActionForm>,
) -> Result<Response, AppError> {
    let (session, role) = admin_or_return!(state, browser, "/admin/users", true);
    let action = AccountAction::parse(&form.action).ok_or_else(|| AppError::BadRequest("error-unknown-action".into()))?;
    let email = form.email.trim();
    let done = state.accounts().operators().act(&session.user, email, action, &acting(&browser, &session), state.now()).await;
    let outcome = done.map(|()| {
        let id = match action {
            AccountAction::Lock => "notice-user-locked",
            AccountAction::Unlock => "notice-user-unlocked",
            AccountAction::ResetMfa => "notice-user-mfa-reset",
            AccountAction::RequireMfa(true) => "notice-user-mfa-required",
            AccountAction::RequireMfa(false) => "notice-user-mfa-not-required",
            AccountAction::Admin(true) => "notice-user-admin",
            AccountAction::Admin(false) => "notice-user-not-admin",
            AccountAction::Auditor(true) => "notice-user-auditor",
            AccountAction::Auditor(false) => "notice-user-not-auditor",
        };
        tr(Msg::new(id).arg("email", email))
    });
    users_page(&state, &browser, role, &form.q, outcome).await
}

/// The policy fields of an application form. Each factor's checkbox is
/// `factor_KEY`, for every key of `FACTOR_KEYS` (the template lists the same).
#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    mfa: String,
    allow_remember: Option<String>,
    #[serde(default)]
    remember_browser_days: String,
    #[serde(default)]
    min_acr: String,
    /// The other fields: the factor checkboxes among them.
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

impl PolicyForm {
    fn policy(&self) -> Result<ClientPolicy, AccountError> {
        let ticked = |key: &str| self.rest.contains_key(&format!("factor_{key}"));
        let days = self.remember_browser_days.trim();
        let policy = ClientPolicy {
            mfa: MfaPolicy::parse(&self.mfa).ok_or_else(|| AccountError::InvalidInput("error-policy-mfa-choice".into()))?,
            allowed_factors: FACTOR_KEYS.iter().filter(|k| ticked(k)).map(|k| (*k).to_owned()).collect(),
            allow_remember: self.allow_remember.is_some(),
            remember_browser_days: match days {
                "" => None,
                d => Some(d.parse().map_err(|_| AccountError::InvalidInput("error-days-whole-number".into()))?),
            },
            min_acr: Some(self.min_acr.clone()).filter(|a| !a.is_empty() && a != "none"),
        };
        policy.validate().map_err(AccountError::InvalidInput)?;
        Ok(policy)
    }
}

async fn clients_page(
    state: &AppState,
    browser: &Browser,
    role: ConsoleRole,
    outcome: Result<ClientNotice, AccountError>,
) -> Result<Response, AppError> {
    let provider = state.provider();
    let clients: Vec<minijinja::Value> = provider
        .clients()
        .await?
        .iter()
        .map(|c| {
            context! {
                id => &c.id, name => &c.name, public => c.is_public(), redirect_uris => &c.redirect_uris,
                policy => minijinja::Value::from_serialize(&c.policy), pinned => provider.policy_is_pinned(&c.id),
            }
        })
        .collect();
    let default_policy = minijinja::Value::from_serialize(ClientPolicy::default());
    let (status, notice, error) = match outcome {
        Ok(n) => (StatusCode::OK, Some(n), None),
        Err(e) => match crate::error::form_problem(&e) {
            Some((status, _)) => (status, None, Some(tr(account_error_msg(&e)))),
            None => return Err(e.into()),
        },
    };
    let (notice, secret, secret_for) = match notice {
        Some(ClientNotice { text, secret }) => (text, secret.as_ref().map(|s| s.1.clone()), secret.map(|s| s.0)),
        None => (None, None, None),
    };
    Ok(browser.page(
        status,
        "admin.html",
        context! { signed_in => true, section => "clients", read_only => read_only(role), clients, default_policy, factor_keys => FACTOR_KEYS, notice, error, secret, secret_for },
    ))
}

/// What a clients page reports: a line, and a secret to show once (client id, secret).
#[derive(Default)]
struct ClientNotice {
    text: Option<String>,
    secret: Option<(String, String)>,
}

/// GET /admin/clients
pub async fn clients(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let (_, role) = admin_or_return!(state, browser, "/admin/clients");
    clients_page(&state, &browser, role, Ok(ClientNotice::default())).await
}

#[derive(Deserialize)]
pub struct NewClientForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    public: Option<String>,
    #[serde(flatten)]
    policy: PolicyForm,
}

/// POST /admin/clients/create
pub async fn create_client(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<NewClientForm>,
) -> Result<Response, AppError> {
    let (session, role) = admin_or_return!(state, browser, "/admin/clients", true);
    let outcome = async {
        let new = NewClient {
            id: Some(form.client_id.trim().to_owned()).filter(|id| !id.is_empty()),
            name: form.name.clone(),
            redirect_uris: vec![form.redirect_uri.trim().to_owned()],
            post_logout_redirect_uris: vec![],
            public: form.public.is_some(),
            policy: form.policy.policy()?,
            signing_alg: SigningAlg::ES256,
            service_scopes: vec![],
        };
        let (client, secret) =
            state.provider().client_admin().register(new, &acting(&browser, &session), state.now()).await.map_err(client_error)?;
        let text = tr(Msg::new("notice-client-added").arg("name", &client.name).arg("client", &client.id));
        Ok(ClientNotice { text: Some(text), secret: secret.map(|s| (client.id, s)) })
    }
    .await;
    clients_page(&state, &browser, role, outcome).await
}

/// A refused registration or policy, in words for the form.
fn client_error(e: portcullis_oidc::OidcError) -> AccountError {
    match e {
        portcullis_oidc::OidcError::OAuth(o) => AccountError::InvalidInput(o.description),
        portcullis_oidc::OidcError::Store(portcullis_core::StoreError::Conflict) => {
            AccountError::InvalidInput("error-client-id-taken".into())
        }
        portcullis_oidc::OidcError::Store(e) => AccountError::Store(e),
        other => AccountError::Store(portcullis_core::StoreError::Backend(other.to_string())),
    }
}

#[derive(Deserialize)]
pub struct ClientPolicyForm {
    client_id: String,
    #[serde(flatten)]
    policy: PolicyForm,
}

/// POST /admin/clients/policy
pub async fn client_policy(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<ClientPolicyForm>,
) -> Result<Response, AppError> {
    let (session, role) = admin_or_return!(state, browser, "/admin/clients", true);
    let outcome = async {
        let policy = form.policy.policy()?;
        let clients = state.provider().client_admin();
        if !clients.set_policy(&form.client_id, &policy, &acting(&browser, &session), state.now()).await.map_err(client_error)? {
            return Err(AccountError::NotFound);
        }
        Ok(ClientNotice { text: Some(tr(Msg::new("notice-policy-saved").arg("client", &form.client_id))), secret: None })
    }
    .await;
    clients_page(&state, &browser, role, outcome).await
}

#[derive(Deserialize)]
pub struct ClientIdForm {
    client_id: String,
}

/// POST /admin/clients/rotate-secret
pub async fn rotate_secret(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<ClientIdForm>,
) -> Result<Response, AppError> {
    let (session, role) = admin_or_return!(state, browser, "/admin/clients", true);
    let outcome = async {
        let clients = state.provider().client_admin();
        let secret = clients
            .rotate_secret(&form.client_id, &acting(&browser, &session), state.now())
            .await
            .map_err(client_error)?
            .ok_or(AccountError::NotFound)?;
        let text = tr(Msg::new("notice-secret-rotated").arg("client", &form.client_id));
        Ok(ClientNotice { text: Some(text), secret: Some((form.client_id.clone(), secret)) })
    }
    .await;
    clients_page(&state, &browser, role, outcome).await
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// GET /admin/audit?user=&event=&from=&to=
pub async fn audit(State(state): State<AppState>, browser: Browser, Query(q): Query<AuditQuery>) -> Result<Response, AppError> {
    let (_, role) = admin_or_return!(state, browser, "/admin/audit");
    let bad = |id: &'static str| AppError::BadRequest(Msg::new(id));
    let date = |s: &str| -> Result<Option<i64>, AppError> {
        match s.trim() {
            "" => Ok(None),
            d => crate::pages::parse_date(d).map(Some).ok_or_else(|| bad("error-date-format")),
        }
    };
    let user = match q.user.trim() {
        "" => None,
        email => match state.accounts().operators().find_user(email).await {
            Ok(u) => Some(u.id),
            Err(AccountError::NotFound) => return Err(bad("error-no-such-user")),
            Err(e) => return Err(e.into()),
        },
    };
    let filter = AuditFilter {
        user,
        kind: match q.event.as_str() {
            "" => None,
            e => Some(AuditKind::parse(e).ok_or_else(|| bad("error-unknown-event"))?),
        },
        since: date(&q.from)?,
        // The whole "to" day.
        until: date(&q.to)?.map(|t| t + 86_399),
        after_id: None,
        limit: PAGE_SIZE,
    };
    let mut emails = std::collections::HashMap::new();
    let mut events = Vec::new();
    for e in state.accounts().operators().audit_log(&filter).await? {
        let who = match e.user {
            Some(id) => match emails.get(&id) {
                Some(email) => Some(String::clone(email)),
                None => {
                    let email = state.accounts().operators().user(id).await?.map(|u| u.email.as_str().to_owned());
                    emails.insert(id, email.clone().unwrap_or_default());
                    email
                }
            },
            None => None,
        };
        events.push(context! {
            when => crate::pages::when(e.at), event => &e.kind, user => who.unwrap_or_else(|| e.user.map(|u| u.to_string()).unwrap_or_default()),
            client => &e.client_id, ip => &e.ip, detail => e.detail.to_string(),
        });
    }
    let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
    let filter = context! { user => q.user.trim(), event => &q.event, from => &q.from, to => &q.to };
    Ok(browser.page(
        StatusCode::OK,
        "admin.html",
        context! { signed_in => true, section => "audit", read_only => read_only(role), events, kinds, filter },
    ))
}

/// Colours of the sign-in chart's methods, most used first (past the last: grey).
const CHART_COLOURS: &[&str] = &["#1f6feb", "#2da44e", "#bf8700", "#8250df", "#cf222e", "#1b7c83", "#9a6700", "#57606a"];

/// A method as the dashboard names it: its steps in words ("your password + your authenticator app").
fn method_words(method: &str) -> String {
    use portcullis_core::methods::AuthMethod;
    method
        .split(" + ")
        .map(|step| AuthMethod::try_from(step.to_owned()).map(|m| tr(m.words())).unwrap_or_else(|_| step.to_owned()))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// `GET /admin/mfa`: the MFA dashboard. Adoption among accounts active in
/// the last 30 days and sign-ins by method per day, as inline SVG drawn here
/// (no script, nothing from elsewhere), each chart also given as a table;
/// and the accounts locked now.
pub async fn mfa_dashboard(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let (_, role) = admin_or_return!(state, browser, "/admin/mfa");
    let now = state.now();
    let d = state.accounts().operators().mfa_dashboard(now).await?;
    let active = d.active.users;
    // One 28 px row per line: "any second factor", then each kind; bars up to 300 px.
    let bar = |row: usize, label: String, n: i64| {
        let share = if active > 0 { n as f64 / active as f64 } else { 0.0 };
        context! { label, n, percent => (share * 100.0).round() as i64, width => (share * 300.0).round() as i64, y => row as i64 * 28 }
    };
    let labels = d.active.by_kind.iter().map(|(kind, n)| {
        let label = match portcullis_core::factors::FactorKind::parse(kind) {
            Some(k) => tr(k.label()),
            None if kind == "recovery" => tr("dashboard-recovery-codes"),
            None => kind.clone(),
        };
        (label, *n)
    });
    let adoption: Vec<_> = std::iter::once((tr("dashboard-any-factor"), d.active.with_any))
        .chain(labels)
        .enumerate()
        .map(|(row, (l, n))| bar(row, l, n))
        .collect();
    let adoption_height = adoption.len() as i64 * 28;
    // Stacked bars, one per day, 20 px apart in a 600 × 160 plot.
    let most = d.days.iter().map(|day| day.counts.iter().sum::<u64>()).max().unwrap_or(0).max(1);
    let scale = 160.0 / most as f64;
    let names: Vec<String> = d.methods.iter().map(|m| method_words(m)).collect();
    let colour = |i: usize| CHART_COLOURS.get(i).copied().unwrap_or("#8c959f");
    let methods: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let total: u64 = d.days.iter().map(|day| day.counts[i]).sum();
            context! { name, colour => colour(i), total }
        })
        .collect();
    let bars: Vec<_> = d
        .days
        .iter()
        .enumerate()
        .map(|(x, day)| {
            let mut top = 160.0;
            let segments: Vec<_> = day
                .counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| {
                    let h = *n as f64 * scale;
                    top -= h;
                    context! { y => top.round() as i64, height => h.round().max(1.0) as i64, colour => colour(i), title => format!("{}: {} · {n}", crate::pages::day(day.start), names[i]) }
                })
                .collect();
            context! { x => x as i64 * 20, segments }
        })
        .collect();
    let total: u64 = d.days.iter().flat_map(|day| day.counts.iter()).sum();
    let locks: Vec<_> = d
        .locks
        .iter()
        .map(|l| context! { email => &l.email, what => tr(if l.second_step { "dashboard-lock-second-step" } else { "dashboard-lock-password" }), until => crate::pages::when(l.until) })
        .collect();
    Ok(browser.page(
        StatusCode::OK,
        "admin.html",
        context! {
            signed_in => true, section => "mfa", read_only => read_only(role),
            active, adoption, adoption_height, methods, bars, total, most, truncated => d.truncated, locks,
            first_day => d.days.first().map(|day| crate::pages::day(day.start)), last_day => d.days.last().map(|day| crate::pages::day(day.start)),
        },
    ))
}
