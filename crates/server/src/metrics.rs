//! Prometheus metrics: the request-latency histograms (a layer on every
//! route), the gauges read at each scrape, and the `/metrics` listener,
//! apart from the public one (`[metrics] listen`). The domain's counters
//! are named in `core/src/metrics.rs`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, http::StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Seconds a request took, by `route` (the pattern, not the path: no
/// unbounded label values), `method` and `status`.
pub const REQUEST_SECONDS: &str = "portcullis_http_request_duration_seconds";

/// Latency buckets (seconds): a page without hashing takes milliseconds; a
/// password hash tens of them, more under load.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the process's Prometheus recorder (once, at start-up).
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("installing the metrics recorder: {e}"))
}

/// Middleware: observes each request's latency under its route pattern.
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(REQUEST_SECONDS, "route" => route, "method" => method, "status" => status).record(start.elapsed().as_secs_f64());
    response
}

/// How long the account gauges (three counts over every account) are
/// reused: frequent scrapes, or anyone reaching the metrics address, cost
/// the database at most this often.
const ACCOUNT_GAUGES_SECONDS: u64 = 30;

/// The kinds `portcullis_users_with_factor` reports, each every time (0 when
/// none has it, so a kind's gauge falls when its last account is gone).
const FACTOR_KINDS: [&str; 5] = ["totp", "passkey", "security_key", "phone", "recovery"];

/// What the scrape handler holds: the app, the exporter, and when the account gauges were last read.
#[derive(Clone)]
struct Scrape {
    state: AppState,
    handle: PrometheusHandle,
    accounts_read: std::sync::Arc<tokio::sync::Mutex<Option<Instant>>>,
}

/// Sets the gauges that are read rather than counted: the hashing queue at
/// every scrape, and how many accounts have a second factor (of each kind)
/// at most every [`ACCOUNT_GAUGES_SECONDS`].
async fn read_gauges(scrape: &Scrape) -> Result<(), portcullis_core::AccountError> {
    let hasher = scrape.state.accounts().password_hasher();
    let in_flight = hasher.in_flight();
    metrics::gauge!("portcullis_password_hashes_in_flight").set(in_flight as f64);
    metrics::gauge!("portcullis_password_hash_queue_depth").set(in_flight.saturating_sub(hasher.threads()) as f64);
    // One reader at a time; the others use what it read.
    let mut read = scrape.accounts_read.lock().await;
    if read.is_some_and(|at| at.elapsed().as_secs() < ACCOUNT_GAUGES_SECONDS) {
        return Ok(());
    }
    let adoption = scrape.state.accounts().operators().factor_adoption(None).await?;
    metrics::gauge!("portcullis_users").set(adoption.users as f64);
    metrics::gauge!("portcullis_users_with_second_factor").set(adoption.with_any as f64);
    for kind in FACTOR_KINDS {
        let n = adoption.by_kind.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
        metrics::gauge!("portcullis_users_with_factor", "kind" => kind).set(n as f64);
    }
    *read = Some(Instant::now());
    Ok(())
}

async fn scrape(State(scrape): State<Scrape>) -> Response {
    if let Err(e) = read_gauges(&scrape).await {
        // The counters are still worth having; the account gauges keep their last values.
        tracing::warn!(error = %e, "metrics: reading the account gauges failed");
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], scrape.handle.render()).into_response()
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes. Also
/// drains the histograms every few seconds, so samples do not pile up in
/// memory while nothing scrapes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
    handle: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let upkeep = handle.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics here\n") })
        .with_state(Scrape { state, handle, accounts_read: Default::default() });
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    upkeep.abort();
    served
}
