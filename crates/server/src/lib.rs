//! Portcullis HTTP transport.
//!
//! Handlers parse the request, find the session, call a `portcullis-core`
//! service, and translate the outcome into a page or a redirect. They decide
//! nothing: every rule lives in `core`. Cross-cutting protections are layers so
//! no route can forget them: CSRF on every state-changing browser request
//! ([`csrf`]), no NUL in any value (`input`), a body-size limit, security
//! headers, request ids.

pub mod csrf;
pub mod error;
pub mod i18n;
mod input;
pub mod metrics;
pub mod pages;
mod request;
mod routes;
mod state;

pub use routes::link_pages;

/// The parsers that read what a request sends, for the fuzz targets in `fuzz/`.
pub mod parsers {
    pub use crate::request::{client_ip, raw_cookie, valid_device_id};
    pub use crate::routes::client_credentials;
}
pub use state::{AppState, ServerSettings};

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (forms are small; this stops memory abuse).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let browser = routes::browser_routes(&state).route_layer(axum::middleware::from_fn_with_state(state.clone(), csrf::guard));
    // Over HTTPS, browsers are told to use nothing else for a year (RFC 6797); not
    // `includeSubDomains`, which would bind sites of the parent domain this server does not run.
    let hsts = state
        .settings()
        .secure_cookies()
        .then(|| SetResponseHeaderLayer::overriding(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000")));
    // Only what people read is negotiated: the protocol's JSON endpoints
    // (token, userinfo, keys: the busiest routes) skip the cookie and
    // `Accept-Language` parsing, and answer in English as RFC 6749 words them.
    let pages = Router::new()
        .merge(browser)
        .merge(routes::oidc_pages())
        .merge(routes::companion_routes(&state))
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), i18n::choose_language));
    Router::new()
        .merge(pages)
        .merge(routes::oidc_routes(&state))
        .merge(routes::ops_routes())
        .route_layer(axum::middleware::from_fn(metrics::observe))
        .with_state(state)
        .layer(axum::middleware::from_fn(input::refuse_nul))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
            ),
        ))
        .layer(tower::util::option_layer(hsts))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_failure(log_failure),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Logs a response that failed on our side, except a `503`: an overload
/// refusal is answered by design, many at once under load, and would flood
/// the log; the other 503s (a failed delivery, an unready database) are
/// logged where they are decided (`form_error`, `AppError::into_response`,
/// the SMS and mail senders, `/readyz`).
fn log_failure(class: ServerErrorsFailureClass, latency: std::time::Duration, _span: &tracing::Span) {
    match class {
        ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::debug!(latency_ms = latency.as_millis() as u64, "refused: service unavailable")
        }
        class => tracing::error!(classification = %class, latency_ms = latency.as_millis() as u64, "response failed"),
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes
/// in-flight requests for at most `grace` (a client that stalls mid-request
/// must not keep the process from stopping). Also runs the periodic clean-up
/// of expired records and the delivery of queued security notices.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let janitor = tokio::spawn(purge_periodically(state.clone()));
    let postman = tokio::spawn(deliver_notices(state.clone()));
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let (stopping, stop_asked) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping.send(());
    });
    let deadline = async move {
        if stop_asked.await.is_err() {
            return std::future::pending().await;
        }
        tracing::info!(grace_seconds = grace.as_secs(), "stopping: no new connections; finishing requests in progress");
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = server.into_future() => result,
        () = deadline => {
            tracing::warn!(grace_seconds = grace.as_secs(), "stopped with requests still in progress after the grace period");
            Ok(())
        }
    };
    janitor.abort();
    // A notice being sent now is claimed for a few minutes, then sent by whichever process runs next.
    postman.abort();
    result
}

/// Sends queued security notices as soon as one is queued here, and every
/// half minute for retries and notices queued by other server processes.
async fn deliver_notices(state: AppState) {
    let queued = state.accounts().notices().notices_queued();
    loop {
        if let Err(e) = state.accounts().notices().deliver_notices(state.now()).await {
            tracing::warn!(error = %e, "delivering security notices failed");
        }
        tokio::select! {
            _ = queued.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

/// How soon after it is written an audit event is sealed into the chain (at most).
pub const AUDIT_SEAL_INTERVAL: Duration = Duration::from_secs(2);

/// Every key reload period (a minute by default): re-read signing keys
/// (another process may have rotated them); every ten minutes: delete
/// expired records; every two seconds: seal new audit events into the chain.
/// Each on its own schedule: a slow clean-up delays no key reload.
async fn purge_periodically(state: AppState) {
    async fn every<F: Future<Output = Result<(), String>>>(period: Duration, what: &str, mut run: impl FnMut() -> F) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = run().await {
                tracing::warn!(error = %e, "{what} failed");
            }
        }
    }
    let reload = Duration::from_secs(state.provider().key_reload_seconds().unsigned_abs());
    tokio::join!(
        every(reload, "reloading signing keys", || async { state.provider().reload_keys(state.now()).await.map_err(|e| e.to_string()) }),
        every(Duration::from_secs(600), "periodic clean-up", || async { state.purge_expired().await.map_err(|e| e.to_string()) }),
        every(AUDIT_SEAL_INTERVAL, "sealing audit events", || async {
            state.accounts().operators().seal_audit_log().await.map(|_| ()).map_err(|e| e.to_string())
        }),
    );
}
