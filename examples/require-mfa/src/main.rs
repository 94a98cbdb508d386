//! The sample from the product's brief: an application behind Portcullis with
//! a home page any signed-in user sees and an admin page that requires MFA.
//!
//! A user signed in with a password only who opens `/admin` is sent back to
//! Portcullis with `acr_values=mfa`, asked only for the second factor (the
//! provider still has the session), and returns to `/admin`. The check is on
//! the ID token's `acr`, through `portcullis-rp`.
//!
//! ```sh
//! cargo run --release -- serve
//! cargo run --release -p require-mfa -- --client "$(cargo run -q --release -- client create \
//!     --name 'Require-MFA sample' --redirect-uri http://localhost:3000/callback)"
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

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

/// One browser's session: the sign-in on its way, and the one finished.
#[derive(Default)]
struct Session {
    pending: Option<PendingSignIn>,
    signed_in: Option<SignedIn>,
}

#[derive(Clone)]
struct App {
    client: WebClient,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

const COOKIE: &str = "require_mfa_session";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let registration: Registration =
        serde_json::from_str(&args.client).map_err(|e| format!("--client: not the JSON of `portcullis client create`: {e}"))?;
    let issuer = Issuer::discover(&args.issuer).await.map_err(|e| format!("{e} (is `portcullis serve` running at {}?)", args.issuer))?;
    let redirect_uri = format!("{}/callback", args.url.trim_end_matches('/'));
    let client = WebClient::new(issuer, &registration.client_id, registration.client_secret.as_deref(), &redirect_uri);
    let app = App { client, sessions: Arc::default() };
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
    fn with_session<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        f(sessions.entry(id.to_owned()).or_default())
    }

    /// The page if this browser's sign-in meets `requirement`; otherwise a
    /// redirect to Portcullis for exactly that, coming back to `path`.
    fn require(&self, headers: &HeaderMap, path: &str, requirement: &Requirement, page: impl FnOnce(&SignedIn) -> String) -> Response {
        let (id, new_cookie) = match session_id(headers) {
            Some(id) => (id, None),
            None => {
                let id = random_id();
                (id.clone(), Some(id))
            }
        };
        let shown = self.with_session(&id, |s| s.signed_in.as_ref().filter(|si| si.meets(requirement).is_ok()).map(page));
        let mut response = match shown {
            Some(html) => Html(html).into_response(),
            None => {
                let (url, pending) = self.client.begin(path, requirement);
                self.with_session(&id, |s| s.pending = Some(pending));
                Redirect::to(&url).into_response()
            }
        };
        if let Some(id) = new_cookie
            && let Ok(value) = session_cookie(&id).parse()
        {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        response
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
    let Some(id) = session_id(&headers) else {
        return (StatusCode::BAD_REQUEST, Html(page("Sign-in failed", "<p>This browser started no sign-in.</p>"))).into_response();
    };
    let Some(pending) = app.with_session(&id, |s| s.pending.take()) else {
        return (StatusCode::BAD_REQUEST, Html(page("Sign-in failed", "<p>This browser has no sign-in on its way.</p>"))).into_response();
    };
    match app.client.finish(pending, &answer).await {
        Ok(signed_in) => {
            // A new session id for the signed-in session (no fixation of one
            // planted before the sign-in).
            let to = signed_in.return_to.clone();
            let fresh = random_id();
            {
                let mut sessions = app.sessions.lock().unwrap_or_else(PoisonError::into_inner);
                sessions.remove(&id);
                sessions.insert(fresh.clone(), Session { pending: None, signed_in: Some(signed_in) });
            }
            let mut response = Redirect::to(&to).into_response();
            if let Ok(value) = session_cookie(&fresh).parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => (StatusCode::BAD_REQUEST, Html(page("Sign-in failed", &format!("<p>{}</p>", escape(&e.to_string()))))).into_response(),
    }
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        app.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
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

fn session_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax")
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
