//! What the tamper-evident audit chain costs per sign-in. A finished sign-in
//! writes one audit event (`sign_in_succeeded`, inside `record_sign_in`'s
//! transaction, as before the chain); the server's sealer links it into the
//! chain later, every 2 s, in batches of 200 under one lock (SQLite's writer
//! lock, a PostgreSQL advisory lock across nodes). So the chain's cost per
//! sign-in is the sealer's per event, and its price to concurrent sign-ins the
//! longest time one batch holds the lock. Measured here on the store itself:
//! events like a sign-in's are written, then sealed as the server seals them.

use std::time::{Duration, Instant};

use portcullis_core::audit::{AuditKind, AuditStore, NewAuditEvent, RequestOrigin};
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::secrets::{MacKey, random_bytes};
use portcullis_core::user::UserId;

use crate::postgres::{PgCost, PgProbe};
use crate::server::Setup;

/// The server's batch (`operators.rs` `SEAL_BATCH`).
const BATCH: u32 = 200;

/// The sealer's cost per event.
pub struct ChainCost {
    pub events: u64,
    pub wall: Duration,
    /// CPU of this process (the sealer's side: reads, HMACs, statements).
    pub cpu: Duration,
    /// The longest batch: how long it held the lock.
    pub longest_batch: Duration,
    pub database: Option<PgCost>,
}

impl ChainCost {
    pub fn print(&self) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / self.events.max(1) as f64;
        println!(
            "audit chain: {} events sealed in batches of {BATCH}: {:.1} µs per event (one per sign-in), {:.1} µs of the sealer's CPU; longest batch {:.1} ms",
            self.events,
            per(self.wall),
            per(self.cpu),
            self.longest_batch.as_secs_f64() * 1e3
        );
        if let Some(db) = &self.database {
            println!(
                "  on PostgreSQL per event: {:.3} transactions, {:.2} rows written, {:.0} WAL bytes, {:.3} write ops, {:.3} ms of its CPU",
                db.transactions, db.rows_written, db.wal_bytes, db.write_ops, db.cpu_ms
            );
        }
    }

    pub fn json(&self) -> serde_json::Value {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / self.events.max(1) as f64;
        serde_json::json!({
            "events": self.events, "batch": BATCH, "wall_us_per_event": per(self.wall), "cpu_us_per_event": per(self.cpu),
            "longest_batch_ms": self.longest_batch.as_secs_f64() * 1e3,
            "postgres_per_event": self.database.as_ref().map(PgCost::json),
        })
    }
}

/// Writes `events` events like a sign-in's, then seals them all as the server does.
pub async fn measure(setup: &Setup, probe: Option<&PgProbe>, events: u64) -> Result<ChainCost, String> {
    let store = portcullis::open_store(&setup.config).await.map_err(|e| e.to_string())?;
    let key = MacKey::new(random_bytes());
    let now = SystemClock.now();
    let origin = RequestOrigin {
        ip: Some(std::net::Ipv4Addr::new(203, 0, 113, 7).into()),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36".into(),
        client_id: Some("bench".into()),
        ..RequestOrigin::default()
    };
    // The detail a password + app sign-in records.
    let detail = serde_json::json!({
        "assessment": { "risk": "low", "reasons": [], "rule": null },
        "methods": ["pwd", "otp", "mfa"], "steps": ["pwd", "otp"], "acr": "mfa",
    });
    for _ in 0..events {
        let event = NewAuditEvent::new(AuditKind::SignInSucceeded, Some(UserId::new()), &origin, detail.clone(), now);
        store.record_audit_event(&event).await.map_err(|e| e.to_string())?;
    }
    if let Some(p) = probe {
        p.analyze().await?;
    }
    let before_db = match probe {
        Some(p) => Some(p.counters().await?),
        None => None,
    };
    let cpu_before = crate::server::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let started = Instant::now();
    let (mut sealed, mut longest_batch) = (0, Duration::ZERO);
    loop {
        let batch = Instant::now();
        let n = store.seal_audit_events(&key, BATCH).await.map_err(|e| e.to_string())?;
        longest_batch = longest_batch.max(batch.elapsed());
        sealed += n;
        if n < u64::from(BATCH) {
            break;
        }
    }
    let wall = started.elapsed();
    let cpu = Duration::from_secs_f64((crate::server::cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu_before).max(0.0));
    let database = match (probe, before_db) {
        (Some(p), Some(before)) => Some(PgProbe::cost(&before, &p.counters().await?, sealed)),
        _ => None,
    };
    store.close().await;
    if sealed != events {
        return Err(format!("sealed {sealed} of {events} events"));
    }
    Ok(ChainCost { events, wall, cpu, longest_batch, database })
}
