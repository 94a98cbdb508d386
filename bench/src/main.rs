//! `portcullis-bench`: starts Portcullis (release build) on a fresh data
//! directory, seeds users, and measures what a demanding operator asks:
//! full MFA sign-in flows per second against this machine's Argon2 capacity,
//! endpoint throughput, CPU time per flow, memory. Prints a table and writes
//! JSON. Run it through `bench/run`, which builds first.

mod endpoints;
mod flow;
mod load;
mod peer;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use portcullis_core::password::{Argon2Cost, PasswordHasher};

use crate::endpoints::{Endpoint, Provider};
use crate::flow::Target;
use crate::load::{Stats, run_load};
use crate::peer::Peer;
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
    let started = Instant::now();
    let users = setup.seed(args.users, PASSWORD).await?;
    println!("seeded {} users in {:.1} s", users.len(), started.elapsed().as_secs_f64());

    let server = Server::start(&args.server, &setup).await?;
    let client = server.create_client()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_kib = server.rss_kib().unwrap_or(0);

    let bound_seconds = Duration::from_secs(args.seconds.min(10));
    let before = argon2_bound(cost, cores, bound_seconds).await?;
    println!("Argon2id bound: {:.1} hashes/s on {cores} core(s), {:.1} ms CPU per hash", before.per_second, before.cpu_ms_per_hash);

    let target = Arc::new(Target::new(&server.base, client, users, PASSWORD).await?);
    let mut flows = Vec::new();
    for &c in &args.concurrency {
        let cpu_before = server.cpu_seconds().unwrap_or(0.0);
        let hashing_before = server.hashing_cpu_seconds().unwrap_or(0.0);
        let own_cpu_before = server::cpu_seconds(std::process::id()).unwrap_or(0.0);
        let t = target.clone();
        let stats = run_load(c, Duration::from_secs(args.seconds), move || {
            let t = t.clone();
            async move { t.full_sign_in().await }
        })
        .await;
        let cpu = server.cpu_seconds().unwrap_or(0.0) - cpu_before;
        let hashing = server.hashing_cpu_seconds().unwrap_or(0.0) - hashing_before;
        // The generator shares the cores: what it burns is not available to the server.
        let own_cpu = server::cpu_seconds(std::process::id()).unwrap_or(0.0) - own_cpu_before;
        println!(
            "  resident memory after this load: {:.1} MB (peak so far {:.1} MB)",
            mb(server.rss_kib().unwrap_or(0)),
            mb(server.peak_rss_kib().unwrap_or(0))
        );
        let per_flow = |seconds: f64| if stats.ok > 0 { seconds * 1000.0 / stats.ok as f64 } else { 0.0 };
        let run = FlowRun {
            concurrency: c,
            server_cpu_ms: per_flow(cpu),
            hashing_cpu_ms: per_flow(hashing),
            generator_cpu_ms: per_flow(own_cpu),
            stats,
        };
        println!(
            "full MFA sign-in, concurrency {c:>2}: {:.1} flows/s  p50 {:.0} ms  p95 {:.0} ms  p99 {:.0} ms  {}  ({} ok, {} errors)",
            run.stats.per_second(),
            run.stats.percentile_ms(50.0),
            run.stats.percentile_ms(95.0),
            run.stats.percentile_ms(99.0),
            run.cpu_text(),
            run.stats.ok,
            run.stats.errors
        );
        if let Some(e) = &run.stats.first_error {
            println!("  first error: {e}");
        }
        flows.push(run);
    }

    // A shared machine's speed drifts: the bound again after the sign-ins, and
    // the shares against the mean of both.
    let after = argon2_bound(cost, cores, bound_seconds).await?;
    println!("Argon2id bound after the sign-ins: {:.1} hashes/s, {:.1} ms CPU per hash", after.per_second, after.cpu_ms_per_hash);
    let bound = Bounds { before, after };

    let peak_rss_kib = server.peak_rss_kib().unwrap_or(0);

    // Endpoints, Portcullis then the peer, one at a time (they share the machine).
    let ours = Arc::new(Provider::discover(&server.base, target.client(), target.access_token().await?).await?);
    let peer = if args.no_peer || args.flows_only { None } else { Some(Peer::start(&args.peer_dir).await?) };
    let peer_idle_rss_kib = peer.as_ref().and_then(Peer::rss_kib).unwrap_or(0);
    let theirs = match &peer {
        Some(p) => Some(Arc::new(Provider::discover(&p.issuer, p.client.clone(), p.access_token.clone()).await?)),
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
    print_table(&args, cores, &bound, &flows, &endpoints, &memory);
    let json = serde_json::json!({
        "users": args.users,
        "database": if args.database_url.is_some() { "postgres" } else { "sqlite" },
        "cores": cores,
        "argon2": {
            "memory_kib": cost.memory_kib, "iterations": cost.iterations, "parallelism": cost.parallelism,
            "hashes_per_second": bound.per_second(), "cpu_ms_per_hash": (bound.before.cpu_ms_per_hash + bound.after.cpu_ms_per_hash) / 2.0,
            "hashes_per_second_before": bound.before.per_second, "hashes_per_second_after": bound.after.per_second,
        },
        "full_sign_in": flows.iter().map(|f| { let s = &f.stats; serde_json::json!({
            "concurrency": f.concurrency, "flows_per_second": s.per_second(), "share_of_argon2_bound": s.per_second() / bound.per_second(),
            "p50_ms": s.percentile_ms(50.0), "p95_ms": s.percentile_ms(95.0), "p99_ms": s.percentile_ms(99.0),
            "server_cpu_ms_per_flow": f.server_cpu_ms, "hashing_cpu_ms_per_flow": f.hashing_cpu_ms,
            "generator_cpu_ms_per_flow": f.generator_cpu_ms, "hash_share_of_cpu": f.hash_share_of_cpu(), "ok": s.ok, "errors": s.errors,
        })}).collect::<Vec<_>>(),
        "endpoints": endpoints.iter().map(|(n, s, o)| serde_json::json!({
            "name": n, "requests_per_second": s.per_second(), "p50_ms": s.percentile_ms(50.0), "p99_ms": s.percentile_ms(99.0), "errors": s.errors,
            "peer_requests_per_second": o.as_ref().map(Stats::per_second),
            "ratio_to_peer": o.as_ref().map(|o| s.per_second() / o.per_second().max(f64::EPSILON)),
        })).collect::<Vec<_>>(),
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
        async move { hasher.hash(PASSWORD).await.map(|_| ()).map_err(|e| e.to_string()) }
    })
    .await;
    // `hasher` is still alive, so are its threads and their CPU counters.
    let cpu = hashing_cpu() - before;
    drop(hasher);
    Ok(Bound { per_second: stats.per_second(), cpu_ms_per_hash: cpu * 1000.0 / stats.ok.max(1) as f64 })
}

/// One full-flow measurement and the CPU it took.
struct FlowRun {
    concurrency: usize,
    stats: Stats,
    /// Server CPU per flow, all threads.
    server_cpu_ms: f64,
    /// Of that, the password-hashing threads.
    hashing_cpu_ms: f64,
    /// The load generator's own CPU per flow (it shares the cores).
    generator_cpu_ms: f64,
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
        format!(
            "server CPU {:.1} ms/flow (password hash {:.1}, the rest {:.1}), load generator {:.1}",
            self.server_cpu_ms,
            self.hashing_cpu_ms,
            self.server_cpu_ms - self.hashing_cpu_ms,
            self.generator_cpu_ms
        )
    }
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
        async move { p.hit(endpoint).await }
    })
    .await
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_table(args: &Args, cores: usize, bound: &Bounds, flows: &[FlowRun], endpoints: &[(&str, Stats, Option<Stats>)], memory: &Memory) {
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
        let s = &f.stats;
        println!(
            "| full MFA sign-in, concurrency {} | {:.1} flows/s, p50/p95/p99 {:.0}/{:.0}/{:.0} ms, {} | {:.2} of the bound; the hash {:.2} of the CPU |",
            f.concurrency,
            s.per_second(),
            s.percentile_ms(50.0),
            s.percentile_ms(95.0),
            s.percentile_ms(99.0),
            f.cpu_text(),
            s.per_second() / bound.per_second(),
            f.hash_share_of_cpu()
        );
    }
    for (n, s, o) in endpoints {
        let peer = match o {
            Some(o) => format!("oidc-provider {:.0} req/s, ratio {:.2}", o.per_second(), s.per_second() / o.per_second().max(f64::EPSILON)),
            None => "no peer".into(),
        };
        println!("| {n}, 32 connections | {:.0} req/s, p99 {:.1} ms | {peer} |", s.per_second(), s.percentile_ms(99.0));
    }
    let peer = if args.no_peer { "no peer".into() } else { format!("oidc-provider idle {:.1} MB", mb(memory.peer_idle_rss_kib)) };
    println!("| resident memory, idle / peak | {:.1} MB / {:.1} MB | {peer} |", mb(memory.idle_rss_kib), mb(memory.peak_rss_kib));
}
