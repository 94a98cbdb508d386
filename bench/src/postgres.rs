//! What a flow costs the PostgreSQL server, read from its own statistics
//! views before and after a measurement: transactions and statements, rows
//! written and read, WAL records and bytes, WAL writes and syncs and data
//! pages written (the write IOPS), and the CPU time of its processes. Also
//! the sizes of the tables and the depth of their B-tree indexes, for what
//! grows with the number of users. These are the raw figures
//! `docs/sizing.md` is built from.

use sqlx::{Connection, PgConnection, Row};

/// A connection to the benchmark's database for reading statistics.
pub struct PgProbe {
    conn: tokio::sync::Mutex<PgConnection>,
}

/// Cumulative counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct PgCounters {
    /// Per table: rows read by sequential scans, and by index scans.
    tables: std::collections::BTreeMap<String, (f64, f64)>,
    transactions: f64,
    statements: Option<f64>,
    rows_written: f64,
    rows_read: f64,
    wal_records: f64,
    wal_bytes: f64,
    /// WAL writes and syncs plus data pages written by the checkpointer, the
    /// background writer and backends: what reaches the disk as writes.
    write_ops: f64,
    cpu_seconds: f64,
}

/// What one flow cost the database, on average over a measurement.
#[derive(Debug, Clone)]
pub struct PgCost {
    /// The tables read most, with rows read per flow by sequential and by index scans.
    pub most_read: Vec<(String, f64, f64)>,
    /// Transactions (an autocommit statement is one).
    pub transactions: f64,
    /// Statements, when `pg_stat_statements` is loaded.
    pub statements: Option<f64>,
    /// Rows inserted, updated or deleted.
    pub rows_written: f64,
    /// Rows returned by scans and fetched by index.
    pub rows_read: f64,
    /// WAL records.
    pub wal_records: f64,
    /// WAL bytes.
    pub wal_bytes: f64,
    /// Write operations (see [`PgCounters`]).
    pub write_ops: f64,
    /// CPU milliseconds of all PostgreSQL processes.
    pub cpu_ms: f64,
}

impl PgCost {
    /// The same figures as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "transactions": self.transactions, "statements": self.statements, "rows_written": self.rows_written,
            "rows_read": self.rows_read, "wal_records": self.wal_records, "wal_bytes": self.wal_bytes,
            "write_ops": self.write_ops, "postgres_cpu_ms": self.cpu_ms,
            "most_read_tables": self.most_read.iter().map(|(t, seq, idx)| serde_json::json!({ "table": t, "seq_rows": seq, "index_rows": idx })).collect::<Vec<_>>(),
        })
    }
}

/// CPU seconds of every process named `postgres` (the server and its backends).
fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            if !head.split_once('(')?.1.starts_with("postgres") {
                return None;
            }
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) as f64 / 100.0)
        })
        .sum()
}

impl PgProbe {
    /// Connects to `url` (the benchmark's fresh database).
    pub async fn connect(url: &str) -> Result<Self, String> {
        let mut conn = PgConnection::connect(url).await.map_err(|e| format!("statistics connection: {e}"))?;
        // For the index depths; contrib, shipped with PostgreSQL.
        let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pageinspect").execute(&mut conn).await;
        Ok(Self { conn: tokio::sync::Mutex::new(conn) })
    }

    /// Refreshes the planner's statistics, as autovacuum would on a server
    /// that has run for a while: tables that were empty when the benchmark
    /// started (codes, sessions) are planned for their real size.
    pub async fn analyze(&self) -> Result<(), String> {
        let mut conn = self.conn.lock().await;
        sqlx::query("ANALYZE").execute(&mut *conn).await.map(|_| ()).map_err(|e| format!("ANALYZE: {e}"))
    }

    /// The counters now.
    pub async fn counters(&self) -> Result<PgCounters, String> {
        let mut conn = self.conn.lock().await;
        let e = |e: sqlx::Error| format!("statistics: {e}");
        // Counters are per transaction snapshot: clear it so each read is fresh.
        sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut *conn).await.map_err(e)?;
        let db = sqlx::query(
            "SELECT (xact_commit + xact_rollback)::float8 AS t, (tup_inserted + tup_updated + tup_deleted)::float8 AS w,
                    (tup_returned + tup_fetched)::float8 AS r
             FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(e)?;
        let wal =
            sqlx::query("SELECT wal_records::float8 AS n, wal_bytes::float8 AS b, (wal_write + wal_sync)::float8 AS o FROM pg_stat_wal")
                .fetch_one(&mut *conn)
                .await
                .map_err(e)?;
        let pages = sqlx::query("SELECT (buffers_checkpoint + buffers_clean + buffers_backend)::float8 AS p FROM pg_stat_bgwriter")
            .fetch_one(&mut *conn)
            .await
            .map_err(e)?;
        let statements = sqlx::query(
            "SELECT coalesce(sum(calls), 0)::float8 AS c FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&mut *conn)
        .await
        .ok()
        .map(|r| r.get::<f64, _>("c"));
        let tables = sqlx::query(
            "SELECT relname AS name, coalesce(seq_tup_read, 0)::float8 AS s, coalesce(idx_tup_fetch, 0)::float8 AS i FROM pg_stat_user_tables",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?
        .iter()
        .map(|r| (r.get::<String, _>("name"), (r.get::<f64, _>("s"), r.get::<f64, _>("i"))))
        .collect();
        // This connection's own reads are a few transactions per measurement: negligible.
        Ok(PgCounters {
            tables,
            transactions: db.get("t"),
            statements,
            rows_written: db.get("w"),
            rows_read: db.get("r"),
            wal_records: wal.get("n"),
            wal_bytes: wal.get("b"),
            write_ops: wal.get::<f64, _>("o") + pages.get::<f64, _>("p"),
            cpu_seconds: postgres_cpu_seconds(),
        })
    }

    /// Per-flow cost between two readings.
    pub fn cost(before: &PgCounters, after: &PgCounters, flows: u64) -> PgCost {
        let n = flows.max(1) as f64;
        let mut most_read: Vec<(String, f64, f64)> = after
            .tables
            .iter()
            .map(|(t, (seq, idx))| {
                let (s0, i0) = before.tables.get(t).copied().unwrap_or_default();
                (t.clone(), (seq - s0) / n, (idx - i0) / n)
            })
            .filter(|(_, seq, idx)| seq + idx > 0.0)
            .collect();
        most_read.sort_by(|a, b| (b.1 + b.2).total_cmp(&(a.1 + a.2)));
        most_read.truncate(5);
        PgCost {
            most_read,
            transactions: (after.transactions - before.transactions) / n,
            statements: before.statements.zip(after.statements).map(|(b, a)| (a - b) / n),
            rows_written: (after.rows_written - before.rows_written) / n,
            rows_read: (after.rows_read - before.rows_read) / n,
            wal_records: (after.wal_records - before.wal_records) / n,
            wal_bytes: (after.wal_bytes - before.wal_bytes) / n,
            write_ops: (after.write_ops - before.write_ops) / n,
            cpu_ms: (after.cpu_seconds - before.cpu_seconds) * 1000.0 / n,
        }
    }

    /// The tables by total size (with indexes and TOAST), and each B-tree
    /// index's depth (levels above the leaves, from `bt_metap`).
    pub async fn sizes(&self) -> Result<serde_json::Value, String> {
        let mut conn = self.conn.lock().await;
        let e = |e: sqlx::Error| format!("sizes: {e}");
        sqlx::query("ANALYZE").execute(&mut *conn).await.map_err(e)?;
        let tables = sqlx::query(
            "SELECT c.relname AS name, pg_total_relation_size(c.oid)::float8 AS bytes, c.reltuples::float8 AS rows
             FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
             ORDER BY 2 DESC",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        let indexes = sqlx::query(
            "SELECT i.relname AS name, t.relname AS tbl, pg_relation_size(i.oid)::float8 AS bytes
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_am a ON a.oid = i.relam
             WHERE a.amname = 'btree' AND i.relnamespace = 'public'::regnamespace ORDER BY 3 DESC",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        let mut index_json = Vec::new();
        for i in &indexes {
            let name: String = i.get("name");
            let level = sqlx::query("SELECT level::int8 AS l FROM bt_metap($1)")
                .bind(&name)
                .fetch_one(&mut *conn)
                .await
                .ok()
                .map(|r| r.get::<i64, _>("l"));
            index_json.push(
                serde_json::json!({ "name": name, "table": i.get::<String, _>("tbl"), "bytes": i.get::<f64, _>("bytes"), "depth": level }),
            );
        }
        let table_json: Vec<_> = tables
            .iter()
            .map(|t| serde_json::json!({ "name": t.get::<String, _>("name"), "bytes": t.get::<f64, _>("bytes"), "rows": t.get::<f64, _>("rows") }))
            .collect();
        Ok(serde_json::json!({ "tables": table_json, "btree_indexes": index_json }))
    }
}
