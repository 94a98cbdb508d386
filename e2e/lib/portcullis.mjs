// Test harness: the real portcullis binary on a free port with its own data
// directory, Debian's Chromium through playwright-core, a DevTools virtual
// authenticator, and a tiny OIDC relying party (a local HTTP receiver).
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const output = join(root, "e2e", "output");
const binary = process.env.PORTCULLIS_BIN || join(root, "target", "debug", "portcullis");

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Starts `portcullis serve`; the issuer is http://localhost:PORT (WebAuthn refuses IP addresses). `settings`: more environment (PORTCULLIS_…). */
export async function startServer(settings = {}) {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run cargo build first`);
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "portcullis-e2e-"));
  const base = `http://localhost:${port}`;
  const globals = ["--data-dir", dataDir, "--issuer", base];
  // Cheap password hashing: these tests are about browsers, not Argon2.
  const env = { ...process.env, PORTCULLIS_PASSWORD__ARGON2_MEMORY_KIB: "256", PORTCULLIS_PASSWORD__ARGON2_ITERATIONS: "1", ...settings };
  const child = spawn(binary, ["serve", "--listen", `127.0.0.1:${port}`, ...globals], { env, stdio: ["ignore", "pipe", "pipe"] });
  // The server's log, for reading after a failure.
  mkdirSync(output, { recursive: true });
  const log = createWriteStream(join(output, "server.log"));
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
    } catch (_) {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`portcullis exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error("portcullis did not become ready in 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    /** Runs the CLI against this server's data directory. */
    cli(args, input) {
      const r = spawnSync(binary, [...args, ...globals], { env, input, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`portcullis ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    },
    /** Messages in the development outbox, oldest first. */
    outbox() {
      const file = join(dataDir, "outbox", "mail.jsonl");
      return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l)) : [];
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless; never a downloaded browser. */
export async function launchBrowser() {
  mkdirSync(output, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Adds a DevTools virtual authenticator to `page` (it answers every WebAuthn prompt). */
export async function addVirtualAuthenticator(page, options) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", automaticPresenceSimulation: true, ...options },
  });
  return {
    async credentials() {
      return (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
    },
  };
}

export async function screenshot(page, name) {
  await page.screenshot({ path: join(output, `${name}.png`), fullPage: true });
}

/** A public OIDC client with a local redirect receiver; `authorize()` gives a URL and awaits the callback. */
export async function relyingParty(server, acr) {
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/cb`;
  const client = JSON.parse(server.cli(["client", "create", "--name", "E2E app", "--redirect-uri", redirectUri, "--public"]));
  let deliver;
  const callback = new Promise((r) => (deliver = r));
  const receiver = createServer((req, res) => {
    const url = new URL(req.url, redirectUri);
    res.end("signed in");
    if (url.pathname === "/cb") deliver(url.searchParams);
  });
  await new Promise((r) => receiver.listen(port, "127.0.0.1", r));
  const verifier = randomBytes(32).toString("base64url");
  const state = randomBytes(16).toString("base64url");
  const params = new URLSearchParams({
    response_type: "code",
    client_id: client.client_id,
    redirect_uri: redirectUri,
    scope: "openid email",
    state,
    nonce: randomBytes(16).toString("base64url"),
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  });
  if (acr) params.set("acr_values", acr);
  return {
    url: `${server.base}/authorize?${params}`,
    /** Waits for the redirect, redeems the code, returns the ID token's claims. */
    async claims() {
      const back = await callback;
      receiver.close();
      if (back.get("state") !== state) throw new Error(`state mismatch: ${back}`);
      if (back.get("error")) throw new Error(`authorization failed: ${back}`);
      const res = await fetch(`http://127.0.0.1:${server.base.split(":")[2]}/token`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code: back.get("code"),
          redirect_uri: redirectUri,
          client_id: client.client_id,
          code_verifier: verifier,
        }),
      });
      const tokens = await res.json();
      if (!res.ok) throw new Error(`token request failed: ${JSON.stringify(tokens)}`);
      return JSON.parse(Buffer.from(tokens.id_token.split(".")[1], "base64url").toString("utf8"));
    },
  };
}
