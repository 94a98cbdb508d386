// Test harness: the real portcullis binary on a free port with its own data
// directory, Debian's Chromium through playwright-core, a DevTools virtual
// authenticator, and a tiny OIDC relying party (a local HTTP receiver).
import { spawn, spawnSync } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
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
  // Never left running after the test process, however it ends.
  process.on("exit", () => child.kill("SIGKILL"));
  // The server's log, for reading after a failure.
  mkdirSync(output, { recursive: true });
  const log = createWriteStream(join(output, "server.log"));
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let logged = "";
  const keep = (chunk) => (logged += chunk);
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
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
    /** What the server has logged so far. */
    log: () => logged,
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

/**
 * A new, empty PostgreSQL database on the server at `DATABASE_URL` (default
 * postgres://postgres@127.0.0.1:5432/test), made with `psql`; `drop()` removes
 * it. Without a reachable server: under CI=true an error, else `null` and a loud line.
 */
export function postgresDatabase() {
  const admin = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
  const name = `portcullis_e2e_${randomBytes(8).toString("hex")}`;
  const psql = (sql) => spawnSync("psql", [admin, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], { encoding: "utf8" });
  const made = psql(`CREATE DATABASE ${name}`);
  if (made.status !== 0) {
    const why = made.error ? made.error.message : made.stderr.trim();
    if (process.env.CI === "true") throw new Error(`CI=true but PostgreSQL at ${admin} cannot be used: ${why}`);
    console.error(`!!!!!!!! SKIPPING the PostgreSQL browser tests: ${admin}: ${why} !!!!!!!!`);
    return null;
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

// axe-core, from npm: the WCAG checks every page the suite visits goes through.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/**
 * Runs axe-core on `page` (WCAG 2.1 A and AA rules) and throws on any
 * violation axe rates serious or critical. Evaluated over DevTools, so the
 * pages' own Content-Security-Policy stays on.
 */
export async function checkAccessibility(page, label = page.url()) {
  // One axe run at a time per page: the automatic check on load and a screenshot's may meet.
  const previous = page.axeRun ?? Promise.resolve();
  const run = previous.catch(() => {}).then(() => axeOnce(page, label));
  page.axeRun = run;
  return run;
}

async function axeOnce(page, label) {
  await page.evaluate(`window.axe || (() => { ${axeSource}\n })()`);
  const violations = await page.evaluate(async (tags) => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  }, WCAG_TAGS);
  if (violations.length) throw new Error(`accessibility of ${label}:\n${violations.join("\n")}`);
  checked.add(new URL(page.url()).pathname);
}

/** Paths axe has passed, and the failures of the automatic checks. */
export const checked = new Set();
const failures = [];

/** Checks every page `page` loads (a navigation that moves on before the check is skipped; `screenshot` checks for sure). */
function watchAccessibility(page) {
  const pending = new Set();
  page.on("load", () => {
    const run = checkAccessibility(page).catch((e) => {
      // A page left before axe finished is checked the next time it is shown.
      if (!/context was destroyed|navigat|Target .*closed|has been closed/i.test(String(e))) failures.push(e);
    });
    pending.add(run);
    run.finally(() => pending.delete(run));
  });
  page.accessibilityChecks = () => Promise.all([...pending]);
}

/** Debian's Chromium, headless; never a downloaded browser. Every page it opens is checked with axe. */
export async function launchBrowser() {
  const browser = await launch();
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (options) => {
    const context = await newContext(options);
    context.on("page", watchAccessibility);
    return context;
  };
  browser.newPage = async (options) => (await browser.newContext(options)).newPage();
  const close = browser.close.bind(browser);
  browser.close = async () => {
    for (const context of browser.contexts()) for (const page of context.pages()) await page.accessibilityChecks?.();
    await close();
    if (failures.length) throw new Error(failures.map(String).join("\n\n"));
  };
  return browser;
}

async function launch() {
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

/**
 * Delivers a Web Push message with `data` (JSON) to the service worker of
 * `page` whose scope contains `scope`, through DevTools (headless Chromium
 * reaches no push service); returns the notifications it then shows, as
 * [title, body, tag].
 */
export async function deliverPush(page, scope, data) {
  const cdp = await page.context().newCDPSession(page);
  // The registration, and its worker once activated: a message delivered to
  // a worker still installing can be dropped.
  let registrationId;
  let activated = false;
  const ready = new Promise((resolve) => {
    const check = () => registrationId && activated && resolve();
    cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => {
      const found = e.registrations.find((r) => r.scopeURL.includes(scope) && !r.isDeleted);
      if (found) registrationId ??= found.registrationId;
      check();
    });
    cdp.on("ServiceWorker.workerVersionUpdated", (e) => {
      if (e.versions.some((v) => v.status === "activated" && (!registrationId || v.registrationId === registrationId))) activated = true;
      check();
    });
  });
  await cdp.send("ServiceWorker.enable");
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await ready;
  const origin = new URL(page.url()).origin;
  // Delivered again if no notification shows within 3 s (a busy machine can
  // lose the first while it starts the worker); the tag keeps one notification.
  for (let attempt = 0; attempt < 4; attempt++) {
    await cdp.send("ServiceWorker.deliverPushMessage", { origin, registrationId, data: JSON.stringify(data) });
    for (let i = 0; i < 30; i++) {
      const shown = await page.evaluate(async () =>
        (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => [n.title, n.body, n.tag]),
      );
      if (shown.length) return shown;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return [];
}

/** Fills the sign-in form `page` shows (email, password) and submits it. */
export async function submitSignIn(page, email, password) {
  await page.locator("#email").fill(email);
  await page.locator("#password").fill(password);
  await page.locator("#password").press("Enter");
}

/**
 * In a browser of its own (another device), signs `email` in and sets up an
 * authenticator app on the security page; returns the app's secret.
 */
export async function setUpAuthenticatorAppElsewhere(browser, server, email, password) {
  const other = await browser.newPage();
  await other.goto(`${server.base}/login`);
  await submitSignIn(other, email, password);
  await other.waitForURL(/\/account$/);
  await other.goto(`${server.base}/account/security`);
  await other.getByRole("button", { name: "Set up authenticator app" }).click();
  const secret = (await other.getByTestId("totp-secret").innerText()).trim();
  await other.locator("#code").fill(totp(secret));
  await other.getByRole("button", { name: "Verify", exact: true }).click();
  await other.getByTestId("recovery-codes").waitFor();
  await other.close();
  return secret;
}

/** Starts `command` and waits until its output says `ready`; it never outlives the test process. */
export async function spawnReady(command, args, ready) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
  process.on("exit", () => child.kill("SIGKILL"));
  await new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => String(d).includes(ready) && resolve());
    child.once("exit", (code) => reject(new Error(`${command} exited with ${code}`)));
  });
  return child;
}

/** Keeps a picture of the page under e2e/output/NAME.png, after checking it with axe. */
export async function screenshot(page, name) {
  await checkAccessibility(page, name);
  await page.screenshot({ path: join(output, `${name}.png`), fullPage: true });
}

/** The RFC 6238 TOTP code (SHA-1, 6 digits, 30 s) of a base32 `secret` at `time`. */
export function totp(secret, time = Date.now()) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/[\s=]/g, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(time / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
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
