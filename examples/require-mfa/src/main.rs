//! A sample application behind Portcullis: a home page any signed-in user
//! sees and an admin page that requires MFA.
//!
//! A user signed in with a password only who opens `/admin` is sent back to
//! Portcullis with `acr_values=mfa`, asked only for the second factor (the
//! provider still has the session), and returns to `/admin`. The check is on
//! the ID token's `acr`, through `portcullis-rp`; the step-up must be
//! completed as the same user (`begin_step_up`).
//!
//! ```sh
//! cargo run --release -- serve
//! cargo run --release -p require-mfa -- --client "$(cargo run -q --release -- client create \
//!     --name 'Require-MFA sample' --redirect-uri http://localhost:3000/callback)"
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use clap::Parser;
use portcullis_rp::{Callback, Issuer, PendingSignIn, Requirement, SignedIn, WebClient};
use rand::RngCore as _;

/// Sample application: an admin page that requires MFA.
#[derive(Parser)]
struct Args {
    /// The Portcullis issuer.
    #[arg(long, env = "SAMPLE_ISSUER", default_value = "http://localhost:8080")]
    issuer: String,
    /// This application's address, as the browser reaches it.
    #[arg(long, env = "SAMPLE_URL", default_value = "http://localhost:3000")]
    url: String,
    /// Where to listen.
    #[arg(long, env = "SAMPLE_LISTEN", default_value = "127.0.0.1:3000")]
    listen: String,
    /// The JSON `portcullis client create` printed (client_id, client_secret).
    #[arg(long, env = "SAMPLE_CLIENT")]
    client: String,
}

#[derive(serde::Deserialize)]
struct Registration {
    client_id: String,
    client_secret: Option<String>,
}

/// One browser's session: sign-ins on their way (a few, so a link to a
/// page that starts one does not cancel another), and the one finished.
struct Session {
    pending: Vec<PendingSignIn>,
    signed_in: Option<SignedIn>,
    created: Instant,
}

#[derive(Clone)]
struct App {
    client: WebClient,
    secure_cookie: bool,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

const COOKIE: &str = "require_mfa_session";
/// Sessions end after this long (and the sample forgets them).
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
const MAX_PENDING: usize = 4;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let registration: Registration =
        serde_json::from_str(&args.client).map_err(|e| format!("--client: not the JSON of `portcullis client create`: {e}"))?;
    let issuer = Issuer::discover(&args.issuer).await.map_err(|e| format!("{e} (is `portcullis serve` running at {}?)", args.issuer))?;
    let redirect_uri = format!("{}/callback", args.url.trim_end_matches('/'));
    let client = WebClient::new(issuer, &registration.client_id, registration.client_secret.as_deref(), &redirect_uri);
    let app = App { client, secure_cookie: args.url.starts_with("https://"), sessions: Arc::default() };
    let router = Router::new()
        .route("/", get(home))
        .route("/admin", get(admin))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("require-mfa sample on {} (issuer {})", args.url, args.issuer);
    axum::serve(listener, router).with_graceful_shutdown(async { drop(tokio::signal::ctrl_c().await) }).await?;
    Ok(())
}

impl App {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|_, s| s.created.elapsed() < SESSION_LIFETIME);
        sessions
    }

    fn set_session_cookie(&self, response: &mut Response, id: &str) {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        let cookie = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", SESSION_LIFETIME.as_secs());
        if let Ok(value) = cookie.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }

    /// The page if this browser's sign-in meets `requirement`; otherwise a
    /// redirect to Portcullis for exactly that (a step-up of the same user
    /// when someone is signed in), coming back to `path`.
    fn require(&self, headers: &HeaderMap, path: &str, requirement: &Requirement, page: impl FnOnce(&SignedIn) -> String) -> Response {
        let mut sessions = self.sessions();
        // This browser's session if the sample issued it and it is live, else
        // a new one (a cookie value the sample never issued is ignored).
        let known = session_id(headers).filter(|id| sessions.contains_key(id));
        let new = known.is_none();
        let id = known.unwrap_or_else(random_id);
        let session = sessions.entry(id.clone()).or_insert_with(|| Session::new(None));
        let mut response = match &session.signed_in {
            Some(s) if s.meets(requirement).is_ok() => Html(page(s)).into_response(),
            current => {
                let (url, pending) = match current {
                    Some(s) => self.client.begin_step_up(s, path, requirement),
                    None => self.client.begin(path, requirement),
                };
                if session.pending.len() == MAX_PENDING {
                    session.pending.remove(0);
                }
                session.pending.push(pending);
                Redirect::to(&url).into_response()
            }
        };
        if new {
            self.set_session_cookie(&mut response, &id);
        }
        response
    }
}

impl Session {
    fn new(signed_in: Option<SignedIn>) -> Self {
        Self { pending: Vec::new(), signed_in, created: Instant::now() }
    }
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Response {
    app.require(&headers, "/", &Requirement::any(), |s| {
        page(
            "Home",
            &format!(
                "<p>Signed in as <strong>{}</strong>, with {} (acr: {}).</p><p><a href=\"/admin\">Admin page</a></p>",
                escape(s.claims.email.as_deref().unwrap_or(&s.claims.sub)),
                escape(&s.claims.amr.join(", ")),
                escape(s.claims.acr.as_deref().unwrap_or("none")),
            ),
        )
    })
}

async fn admin(State(app): State<App>, headers: HeaderMap) -> Response {
    app.require(&headers, "/admin", &Requirement::mfa(), |s| {
        page(
            "Admin page",
            &format!(
                "<p data-testid=\"admin-claims\">Multi-factor sign-in confirmed: acr {}, amr {}.</p><p><a href=\"/\">Home</a></p>",
                escape(s.claims.acr.as_deref().unwrap_or("none")),
                escape(&s.claims.amr.join(", ")),
            ),
        )
    })
}

async fn callback(State(app): State<App>, headers: HeaderMap, Query(answer): Query<Callback>) -> Response {
    let failed = |why: &str| (StatusCode::BAD_REQUEST, Html(page("Sign-in failed", &format!("<p>{}</p>", escape(why))))).into_response();
    let Some(id) = session_id(&headers) else {
        return failed("This browser started no sign-in.");
    };
    // Only the sign-in this answer is for is taken: a forged callback does
    // not cancel one in progress.
    let pending = app.sessions().get_mut(&id).and_then(|s| {
        let at = s.pending.iter().position(|p| p.answered_by(&answer))?;
        Some(s.pending.remove(at))
    });
    let Some(pending) = pending else {
        return failed("This browser has no sign-in on its way that this answer is for.");
    };
    match app.client.finish(pending, &answer).await {
        Ok(signed_in) => {
            // A new session id for the signed-in session (no fixation of one
            // planted before the sign-in).
            let to = signed_in.return_to.clone();
            let fresh = random_id();
            {
                let mut sessions = app.sessions();
                sessions.remove(&id);
                sessions.insert(fresh.clone(), Session::new(Some(signed_in)));
            }
            let mut response = Redirect::to(&to).into_response();
            app.set_session_cookie(&mut response, &fresh);
            response
        }
        Err(e) => failed(&e.to_string()),
    }
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        app.sessions().remove(&id);
    }
    Html(page("Signed out", "<p>Signed out of the sample (not of Portcullis).</p>")).into_response()
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_owned))
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body><main><h1>{title}</h1>{body}\
         <form method=\"post\" action=\"/logout\"><button>Sign out</button></form></main></body></html>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
