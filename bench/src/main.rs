//! `portcullis-bench`: starts Portcullis (release build) on a fresh data
//! directory, seeds users, and measures what a demanding operator asks:
//! full MFA sign-in flows per second against this machine's Argon2 capacity
//! (and what happens far beyond it), single sign-on and passkey flows beside
//! the peer provider's, endpoint throughput, CPU time per flow, memory.
//! Prints a table and writes JSON. Run it through `bench/run`, which builds
//! first.

mod audit_chain;
mod endpoints;
mod flow;
mod load;
mod peer;
mod postgres;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use portcullis_core::password::{Argon2Cost, PasswordHasher};

use crate::endpoints::{Endpoint, Provider};
use crate::flow::{BrowserPool, ClientCredentials, PeerFlows, SingleSignOn, Target};
use crate::load::{Failure, Stats, run_load};
use crate::peer::Peer;
use crate::postgres::{PgCost, PgProbe};
use crate::server::{Server, Setup};

#[derive(Parser)]
#[command(about = "Benchmarks Portcullis: full MFA sign-ins, endpoint throughput, memory")]
struct Args {
    /// Users to seed (each with a password and an authenticator app).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// PostgreSQL URL; default: SQLite in the data directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Seconds of load per measurement.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrency levels of the full-flow scenario.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 32])]
    concurrency: Vec<usize>,
    /// Concurrent sign-ins of the overload run (0: none).
    #[arg(long, default_value_t = 256)]
    overload: usize,
    /// Concurrency of the single sign-on and passkey flows.
    #[arg(long, default_value_t = 32)]
    flow_concurrency: usize,
    /// The Portcullis binary.
    #[arg(long, default_value = "target/release/portcullis")]
    server: PathBuf,
    /// Skip the peer provider (no Node.js).
    #[arg(long)]
    no_peer: bool,
    /// Measure the full flow only (for comparing two builds; no endpoints, no peer).
    #[arg(long)]
    flows_only: bool,
    /// The peer provider's directory (after `npm ci` there).
    #[arg(long, default_value = "bench/peer")]
    peer_dir: PathBuf,
    /// Measure only what the audit chain costs per sign-in: seal this many
    /// events like a sign-in's, as the server does (on SQLite, or on
    /// PostgreSQL with --database-url).
    #[arg(long)]
    audit_chain: Option<u64>,
    /// Where to write the results.
    #[arg(long, default_value = "bench/results.json")]
    json: PathBuf,
}

/// The password every seeded user has.
const PASSWORD: &str = "bench-Quiver-87-lantern";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cost = Argon2Cost::default();
    println!("machine: {cores} core(s); Argon2id m={} KiB t={} p={}", cost.memory_kib, cost.iterations, cost.parallelism);

    // Owner only: the server refuses a data directory others can read.
    let data = {
        use std::os::unix::fs::PermissionsExt;
        tempfile::Builder::new().permissions(std::fs::Permissions::from_mode(0o700)).tempdir().map_err(|e| e.to_string())?
    };
    let setup = Setup::new(data.path(), args.database_url.as_deref()).await?;
    if let Some(events) = args.audit_chain {
        let probe = match setup.postgres_url() {
            Some(url) => Some(PgProbe::connect(url).await?),
            None => None,
        };
        let cost = audit_chain::measure(&setup, probe.as_ref(), events).await?;
        cost.print();
        let json = serde_json::json!({ "database": if probe.is_some() { "postgres" } else { "sqlite" }, "audit_chain": cost.json() });
        return std::fs::write(&args.json, serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?).map_err(|e| e.to_string());
    }
    let started = Instant::now();
    let users = setup.seed(args.users, PASSWORD).await?;
    println!("seeded {} users in {:.1} s", users.len(), started.elapsed().as_secs_f64());

    let probe = match setup.postgres_url() {
        Some(url) => Some(Arc::new(PgProbe::connect(url).await?)),
        None => None,
    };
    let sizes_seeded = match &probe {
        Some(p) => Some(p.sizes().await?),
        None => None,
    };
    let server = Server::start(&args.server, &setup).await?;
    let client = server.create_client("bench")?;
    let sso_client = server.create_client("bench-sso")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_kib = server.rss_kib().unwrap_or(0);

    let bound_seconds = Duration::from_secs(args.seconds.min(10));
    let before = argon2_bound(cost, cores, bound_seconds).await?;
    println!("Argon2id bound: {:.1} hashes/s on {cores} core(s), {:.1} ms CPU per hash", before.per_second, before.cpu_ms_per_hash);

    let mut target = Target::new(&server.base, client, sso_client, users, PASSWORD).await?;
    // One passkey per concurrent flow and as many again, so no flow waits for a key.
    let started = Instant::now();
    target.enroll_passkeys(args.flow_concurrency * 2).await?;
    println!("enrolled {} passkeys in {:.1} s", args.flow_concurrency * 2, started.elapsed().as_secs_f64());
    let target = Arc::new(target);
    let ours = Process { pid: server.pid(), name: "Portcullis" };
    let seconds = Duration::from_secs(args.seconds);
    if probe.is_some() {
        // A server that has run a while: codes, sessions and devices in the
        // tables, and the planner's statistics (refreshed before each
        // measurement) counting them, so the plans are the steady state's.
        let t = target.clone();
        let warm = run_load(8, Duration::from_secs(5), move || {
            let t = t.clone();
            async move { t.full_sign_in().await }
        })
        .await;
        println!("warm-up on PostgreSQL: {} sign-ins", warm.ok);
    }
    let mut flows = Vec::new();
    let levels = args.concurrency.iter().copied().chain((args.overload > 0).then_some(args.overload));
    for c in levels {
        let t = target.clone();
        let run = measure_flow(ours, probe.as_deref(), c, seconds, move || {
            let t = t.clone();
            async move { t.full_sign_in().await }
        })
        .await;
        println!(
            "  resident memory after this load: {:.1} MB (peak so far {:.1} MB)",
            mb(server.rss_kib().unwrap_or(0)),
            mb(server.peak_rss_kib().unwrap_or(0))
        );
        run.print(&format!("full MFA sign-in, concurrency {c:>3}"));
        flows.push(run);
    }

    // A shared machine's speed drifts: the bound again after the sign-ins, and
    // the shares against the mean of both.
    let after = argon2_bound(cost, cores, bound_seconds).await?;
    println!("Argon2id bound after the sign-ins: {:.1} hashes/s, {:.1} ms CPU per hash", after.per_second, after.cpu_ms_per_hash);
    let bound = Bounds { before, after };

    // Flows no password hash limits, Portcullis then the peer.
    let c = args.flow_concurrency;
    let sso = measure_single_sign_on(&target, ours, probe.as_deref(), c, seconds).await?;
    sso.print(&format!("single sign-on, concurrency {c}"));
    let t = target.clone();
    let passkey = measure_flow(ours, probe.as_deref(), c, seconds, move || {
        let t = t.clone();
        async move { t.passkey_sign_in().await }
    })
    .await;
    passkey.print(&format!("passkey sign-in, concurrency {c}"));
    let peak_rss_kib = server.peak_rss_kib().unwrap_or(0);

    let peer = if args.no_peer || args.flows_only { None } else { Some(Peer::start(&args.peer_dir).await?) };
    let peer_idle_rss_kib = peer.as_ref().and_then(Peer::rss_kib).unwrap_or(0);
    let peer_rp = match &peer {
        Some(p) => {
            let pair = |(id, secret): &(String, String)| ClientCredentials { id: id.clone(), secret: secret.clone() };
            Some(Arc::new(PeerFlows::new(&p.issuer, pair(&p.client), pair(&p.sso_client)).await?))
        }
        None => None,
    };
    let peer_flows = match (&peer, &peer_rp) {
        (Some(p), Some(f)) => Some(peer_flows(p, f, c, seconds).await?),
        _ => None,
    };

    // Endpoints, Portcullis then the peer, one at a time (they share the machine).
    let ours = Arc::new(Provider::discover(&server.base, target.client(), target.access_token().await?).await?);
    let theirs = match &peer {
        // A token of a sign-in just now: the peer's store holds it as it would any live token.
        Some(p) => {
            let token = match &peer_rp {
                Some(f) => f.access_token().await?,
                None => p.access_token.clone(),
            };
            Some(Arc::new(Provider::discover(&p.issuer, p.client.clone(), token).await?))
        }
        None => None,
    };
    let seconds = Duration::from_secs(args.seconds.min(10));
    let mut endpoints = Vec::new();
    for (name, endpoint) in Endpoint::ALL.into_iter().filter(|_| !args.flows_only) {
        let mine = measure_endpoint(&ours, endpoint, seconds).await;
        let other = match &theirs {
            Some(t) => Some(measure_endpoint(t, endpoint, seconds).await),
            None => None,
        };
        let ratio = other.as_ref().map(|o| mine.per_second() / o.per_second().max(f64::EPSILON));
        println!(
            "{name:<27} Portcullis {:>7.0} req/s (p99 {:.1} ms){}",
            mine.per_second(),
            mine.percentile_ms(99.0),
            match (&other, ratio) {
                (Some(o), Some(r)) =>
                    format!("   oidc-provider {:>7.0} req/s (p99 {:.1} ms)   ratio {r:.2}", o.per_second(), o.percentile_ms(99.0)),
                _ => String::new(),
            }
        );
        for e in [mine.first_error.as_ref(), other.as_ref().and_then(|o| o.first_error.as_ref())].into_iter().flatten() {
            println!("  first error: {e}");
        }
        endpoints.push((name, mine, other));
    }
    if let Some(p) = peer {
        p.stop().await;
    }

    let memory = Memory { idle_rss_kib, peak_rss_kib, peer_idle_rss_kib };
    let sizes_end = match &probe {
        Some(p) => Some(p.sizes().await?),
        None => None,
    };
    let other_flows = OtherFlows { sso, passkey, peer: peer_flows };
    print_table(&args, cores, &bound, &flows, &other_flows, &endpoints, &memory);
    let json = serde_json::json!({
        "users": args.users,
        "database": if args.database_url.is_some() { "postgres" } else { "sqlite" },
        "cores": cores,
        "argon2": {
            "memory_kib": cost.memory_kib, "iterations": cost.iterations, "parallelism": cost.parallelism,
            "hashes_per_second": bound.per_second(), "cpu_ms_per_hash": (bound.before.cpu_ms_per_hash + bound.after.cpu_ms_per_hash) / 2.0,
            "hashes_per_second_before": bound.before.per_second, "hashes_per_second_after": bound.after.per_second,
        },
        "full_sign_in": flows.iter().map(|f| {
            let mut v = f.json();
            v["share_of_argon2_bound"] = (f.stats.per_second() / bound.per_second()).into();
            v
        }).collect::<Vec<_>>(),
        "single_sign_on": other_flows.sso.json(),
        "passkey_sign_in": other_flows.passkey.json(),
        "peer_single_sign_on": other_flows.peer.as_ref().map(|p| p.sso.json()),
        "peer_interactive_sign_in": other_flows.peer.as_ref().map(|p| p.sign_in.json()),
        "endpoints": endpoints.iter().map(|(n, s, o)| serde_json::json!({
            "name": n, "requests_per_second": s.per_second(), "p50_ms": s.percentile_ms(50.0), "p99_ms": s.percentile_ms(99.0), "errors": s.errors,
            "peer_requests_per_second": o.as_ref().map(Stats::per_second),
            "ratio_to_peer": o.as_ref().map(|o| s.per_second() / o.per_second().max(f64::EPSILON)),
        })).collect::<Vec<_>>(),
        "postgres_sizes_after_seeding": sizes_seeded,
        "postgres_sizes_at_the_end": sizes_end,
        "rss_kib": { "idle": memory.idle_rss_kib, "peak": memory.peak_rss_kib, "peer_idle": memory.peer_idle_rss_kib },
    });
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    println!("results written to {}", args.json.display());
    server.stop().await;
    Ok(())
}

/// What the machine's cores do with nothing but the password hash.
struct Bound {
    /// Hashes per second, all cores hashing.
    per_second: f64,
    /// CPU time of one hash with all cores hashing (memory bandwidth is shared).
    cpu_ms_per_hash: f64,
}

/// The bound measured before and after the sign-ins.
struct Bounds {
    before: Bound,
    after: Bound,
}

impl Bounds {
    /// The mean of both: what the shares are computed against.
    fn per_second(&self) -> f64 {
        (self.before.per_second + self.after.per_second) / 2.0
    }
}

/// Argon2id hashes per second with the server's parameters, `cores` at once,
/// through the same bounded pool the server uses.
async fn argon2_bound(cost: Argon2Cost, cores: usize, duration: Duration) -> Result<Bound, String> {
    let hasher = PasswordHasher::new(cost, cores).map_err(|e| e.to_string())?;
    let hashing_cpu = || server::threads_cpu_seconds(std::process::id(), server::HASHING_THREADS).unwrap_or(0.0);
    let before = hashing_cpu();
    let load_hasher = hasher.clone();
    let stats = run_load(cores, duration, move || {
        let hasher = load_hasher.clone();
        async move { hasher.hash(PASSWORD).await.map(|_| ()).map_err(|e| Failure::Error(e.to_string())) }
    })
    .await;
    // `hasher` is still alive, so are its threads and their CPU counters.
    let cpu = hashing_cpu() - before;
    drop(hasher);
    Ok(Bound { per_second: stats.per_second(), cpu_ms_per_hash: cpu * 1000.0 / stats.ok.max(1) as f64 })
}

/// A process whose CPU time a measurement reads.
#[derive(Clone, Copy)]
struct Process {
    pid: u32,
    name: &'static str,
}

/// One flow measurement and the CPU it took.
struct FlowRun {
    concurrency: usize,
    stats: Stats,
    /// The provider's CPU per flow, all threads.
    server_cpu_ms: f64,
    /// Of that, the password-hashing threads.
    hashing_cpu_ms: f64,
    /// The load generator's own CPU per flow (it shares the cores).
    generator_cpu_ms: f64,
    /// What each flow cost PostgreSQL, when it runs on PostgreSQL.
    database: Option<PgCost>,
}

/// Runs `op` from `concurrency` workers for `duration`, reading the CPU time
/// `provider` and this load generator spent meanwhile.
async fn measure_flow<F, Fut>(provider: Process, probe: Option<&PgProbe>, concurrency: usize, duration: Duration, op: F) -> FlowRun
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Failure>> + Send + 'static,
{
    let cpu = || server::cpu_seconds(provider.pid).unwrap_or(0.0);
    let hashing = || server::threads_cpu_seconds(provider.pid, server::HASHING_THREADS).unwrap_or(0.0);
    let own = || server::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let db_before = match probe {
        Some(p) => {
            let _ = p.analyze().await;
            p.counters().await.ok()
        }
        None => None,
    };
    let (cpu_before, hashing_before, own_before) = (cpu(), hashing(), own());
    let stats = run_load(concurrency, duration, op).await;
    let (cpu_after, hashing_after, own_after) = (cpu(), hashing(), own());
    let database = match (probe, db_before) {
        (Some(p), Some(before)) => p.counters().await.ok().map(|after| PgProbe::cost(&before, &after, stats.ok)),
        _ => None,
    };
    let per_flow = |seconds: f64| if stats.ok > 0 { seconds * 1000.0 / stats.ok as f64 } else { 0.0 };
    FlowRun {
        concurrency,
        server_cpu_ms: per_flow(cpu_after - cpu_before),
        hashing_cpu_ms: per_flow(hashing_after - hashing_before),
        // The generator shares the cores: what it burns is not available to the server.
        generator_cpu_ms: per_flow(own_after - own_before),
        stats,
        database,
    }
}

impl FlowRun {
    /// The password hash's part of all the CPU a flow costs (server and
    /// generator). Unlike the share of the bound, every term is measured in the
    /// same seconds, so a machine whose speed drifts between the bound and the
    /// load moves it little; with the cores saturated and no interference the
    /// two agree.
    fn hash_share_of_cpu(&self) -> f64 {
        self.hashing_cpu_ms / (self.server_cpu_ms + self.generator_cpu_ms).max(f64::EPSILON)
    }

    fn cpu_text(&self) -> String {
        if self.hashing_cpu_ms == 0.0 {
            return format!("server CPU {:.2} ms/flow, load generator {:.2}", self.server_cpu_ms, self.generator_cpu_ms);
        }
        format!(
            "server CPU {:.1} ms/flow (password hash {:.1}, the rest {:.1}), load generator {:.1}",
            self.server_cpu_ms,
            self.hashing_cpu_ms,
            self.server_cpu_ms - self.hashing_cpu_ms,
            self.generator_cpu_ms
        )
    }

    /// Flows/s and latencies, and the refusals when there were any.
    fn summary(&self) -> String {
        let s = &self.stats;
        let refused = if s.refused > 0 { format!(", {:.0}% refused (503)", s.refused_share() * 100.0) } else { String::new() };
        format!(
            "{:.1} flows/s, p50/p95/p99 {:.0}/{:.0}/{:.0} ms{refused}",
            s.per_second(),
            s.percentile_ms(50.0),
            s.percentile_ms(95.0),
            s.percentile_ms(99.0)
        )
    }

    fn print(&self, name: &str) {
        println!(
            "{name}: {}  {}  ({} ok, {} refused, {} errors)",
            self.summary(),
            self.cpu_text(),
            self.stats.ok,
            self.stats.refused,
            self.stats.errors
        );
        if let Some(d) = &self.database {
            println!(
                "  PostgreSQL per flow: {:.1} transactions, {} statements, {:.1} rows written, {:.1} rows read, {:.1} WAL records, {:.0} WAL bytes, {:.2} write operations, {:.2} ms CPU",
                d.transactions,
                d.statements.map(|s| format!("{s:.1}")).unwrap_or_else(|| "? (pg_stat_statements not loaded)".into()),
                d.rows_written,
                d.rows_read,
                d.wal_records,
                d.wal_bytes,
                d.write_ops,
                d.cpu_ms
            );
            let read: Vec<String> = d.most_read.iter().map(|(t, seq, idx)| format!("{t} {seq:.0} by scan + {idx:.0} by index")).collect();
            println!("  rows read most per flow: {}", read.join(", "));
        }
        if let Some(e) = &self.stats.first_error {
            println!("  first error: {e}");
        }
    }

    fn json(&self) -> serde_json::Value {
        let s = &self.stats;
        serde_json::json!({
            "concurrency": self.concurrency, "flows_per_second": s.per_second(),
            "p50_ms": s.percentile_ms(50.0), "p95_ms": s.percentile_ms(95.0), "p99_ms": s.percentile_ms(99.0),
            "server_cpu_ms_per_flow": self.server_cpu_ms, "hashing_cpu_ms_per_flow": self.hashing_cpu_ms,
            "generator_cpu_ms_per_flow": self.generator_cpu_ms, "hash_share_of_cpu": self.hash_share_of_cpu(),
            "ok": s.ok, "refused": s.refused, "refused_share": s.refused_share(), "errors": s.errors,
            "postgres_per_flow": self.database.as_ref().map(PgCost::json),
        })
    }
}

/// The peer's flows: single sign-on, and its interactive sign-in with an immediate login.
struct PeerRuns {
    sso: FlowRun,
    sign_in: FlowRun,
}

/// The flows without a password hash.
struct OtherFlows {
    sso: FlowRun,
    passkey: FlowRun,
    peer: Option<PeerRuns>,
}

/// Single sign-on from `concurrency` signed-in browsers, one per worker.
async fn measure_single_sign_on<P: SingleSignOn>(
    provider: &Arc<P>,
    process: Process,
    probe: Option<&PgProbe>,
    concurrency: usize,
    duration: Duration,
) -> Result<FlowRun, String> {
    let mut browsers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        browsers.push(provider.signed_in_browser().await?);
    }
    let pool = BrowserPool::new(browsers);
    let provider = provider.clone();
    Ok(measure_flow(process, probe, concurrency, duration, move || {
        let (provider, pool) = (provider.clone(), pool.clone());
        async move {
            let mut browser = pool.take()?;
            let result = provider.single_sign_on(&mut browser).await;
            pool.put(browser);
            result
        }
    })
    .await)
}

/// The peer's single sign-on and sign-in, `concurrency` at a time.
async fn peer_flows(peer: &Peer, flows: &Arc<PeerFlows>, concurrency: usize, duration: Duration) -> Result<PeerRuns, String> {
    let process = Process { pid: peer.pid().ok_or("the peer exited")?, name: "oidc-provider" };
    let sso = measure_single_sign_on(flows, process, None, concurrency, duration).await?;
    sso.print(&format!("{}: single sign-on, concurrency {concurrency}", process.name));
    let f = flows.clone();
    let sign_in = measure_flow(process, None, concurrency, duration, move || {
        let f = f.clone();
        async move { f.interactive_sign_in().await }
    })
    .await;
    sign_in.print(&format!("{}: sign-in with an immediate login, concurrency {concurrency}", process.name));
    Ok(PeerRuns { sso, sign_in })
}

/// Resident set sizes.
struct Memory {
    idle_rss_kib: u64,
    peak_rss_kib: u64,
    peer_idle_rss_kib: u64,
}

/// Endpoint load: 32 keep-alive workers.
async fn measure_endpoint(provider: &Arc<Provider>, endpoint: Endpoint, duration: Duration) -> Stats {
    let p = provider.clone();
    run_load(32, duration, move || {
        let p = p.clone();
        async move { p.hit(endpoint).await.map_err(Failure::Error) }
    })
    .await
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_table(
    args: &Args,
    cores: usize,
    bound: &Bounds,
    flows: &[FlowRun],
    other: &OtherFlows,
    endpoints: &[(&str, Stats, Option<Stats>)],
    memory: &Memory,
) {
    println!();
    println!(
        "| {} users, {}, {cores} core(s) | Portcullis | |",
        args.users,
        if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" }
    );
    println!("|---|---|---|");
    println!(
        "| Argon2id bound (same parameters and cores) | {:.1} hashes/s ({:.1} before the sign-ins, {:.1} after), {:.1} / {:.1} ms CPU per hash | |",
        bound.per_second(),
        bound.before.per_second,
        bound.after.per_second,
        bound.before.cpu_ms_per_hash,
        bound.after.cpu_ms_per_hash
    );
    for f in flows {
        println!(
            "| full MFA sign-in, {} at a time | {}, {} | {:.2} of the bound; the hash {:.2} of the CPU |",
            f.concurrency,
            f.summary(),
            f.cpu_text(),
            f.stats.per_second() / bound.per_second(),
            f.hash_share_of_cpu()
        );
    }
    let beside = |ours: &FlowRun, theirs: Option<&FlowRun>| match theirs {
        Some(t) => format!(
            "oidc-provider {}, CPU {:.2} ms/flow: {:.1}×",
            t.summary(),
            t.server_cpu_ms,
            ours.stats.per_second() / t.stats.per_second().max(f64::EPSILON)
        ),
        None => "no peer".into(),
    };
    let peer = other.peer.as_ref();
    println!(
        "| single sign-on (second application), {} at a time | {}, {} | {} |",
        other.sso.concurrency,
        other.sso.summary(),
        other.sso.cpu_text(),
        beside(&other.sso, peer.map(|p| &p.sso))
    );
    println!(
        "| passkey sign-in (passwordless), {} at a time | {}, {} | {} (its sign-in with an immediate login) |",
        other.passkey.concurrency,
        other.passkey.summary(),
        other.passkey.cpu_text(),
        beside(&other.passkey, peer.map(|p| &p.sign_in))
    );
    for (n, s, o) in endpoints {
        let peer = match o {
            Some(o) => format!("oidc-provider {:.0} req/s: {:.1}×", o.per_second(), s.per_second() / o.per_second().max(f64::EPSILON)),
            None => "no peer".into(),
        };
        println!("| {n}, 32 connections | {:.0} req/s, p99 {:.1} ms | {peer} |", s.per_second(), s.percentile_ms(99.0));
    }
    let peer = if args.no_peer { "no peer".into() } else { format!("oidc-provider idle {:.1} MB", mb(memory.peer_idle_rss_kib)) };
    println!("| resident memory, idle / peak | {:.1} MB / {:.1} MB | {peer} |", mb(memory.idle_rss_kib), mb(memory.peak_rss_kib));
}
