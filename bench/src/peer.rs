//! The peer provider: panva's `oidc-provider` (bench/peer/server.mjs) on Node.js.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// A running peer.
pub struct Peer {
    child: tokio::process::Child,
    /// Its issuer URL.
    pub issuer: String,
    /// Its confidential client.
    pub client: (String, String),
    /// A second client, for single sign-on.
    pub sso_client: (String, String),
    /// A user's access token.
    pub access_token: String,
}

impl Peer {
    /// Starts `node server.mjs` in `dir` (after `npm ci` there) on a free port.
    pub async fn start(dir: &Path) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let mut child = tokio::process::Command::new("node")
            .arg("server.mjs")
            .current_dir(dir)
            .env("PORT", port.to_string())
            .env("NODE_ENV", "production")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start node in {}: {e}", dir.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout from node")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with('{') {
                    return Some(line);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or("the peer did not start (did `npm ci --prefix bench/peer` run?)")?;
        let v: serde_json::Value = serde_json::from_str(&ready).map_err(|e| e.to_string())?;
        let field = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(|| format!("peer output lacks {k}"));
        Ok(Self {
            issuer: field("issuer")?,
            client: (field("client_id")?, field("client_secret")?),
            sso_client: (field("sso_client_id")?, field("sso_client_secret")?),
            access_token: field("access_token")?,
            child,
        })
    }

    /// The Node.js process.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resident set size of the Node.js process now.
    pub fn rss_kib(&self) -> Option<u64> {
        crate::server::status_kib(self.child.id()?, "VmRSS:")
    }

    /// Stops the peer.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
