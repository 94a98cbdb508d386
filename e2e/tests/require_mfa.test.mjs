// The sample application (examples/require-mfa, built on portcullis-rp) next
// to a real server, in a real browser: the home page takes a password-only
// sign-in; the admin page sends the user back for the second factor only (no
// second password) and returns to the admin page, which shows acr mfa.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { freePort, launchBrowser, screenshot, setUpAuthenticatorAppElsewhere, spawnReady, startServer, submitSignIn, totp } from "../lib/portcullis.mjs";

const PASSWORD = "tangerine-Quiver-87-lantern";
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const sampleBinary = join(root, "target", "debug", "require-mfa");
let server;
let browser;
let sample;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  sample?.kill("SIGTERM");
  await browser?.close();
  await server?.stop();
});

/** Starts the sample the way the README does: with the JSON `client create` printed. */
async function startSample() {
  if (!existsSync(sampleBinary)) throw new Error(`${sampleBinary} is missing: run cargo test --workspace --all-features --no-run first`);
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const client = server.cli(["client", "create", "--name", "Require-MFA sample", "--redirect-uri", `${url}/callback`]);
  sample = await spawnReady(sampleBinary, ["--issuer", server.base, "--url", url, "--listen", `127.0.0.1:${port}`, "--client", client.trim()], "require-mfa sample on");
  return url;
}

test("the admin page requires MFA: a password-only user is asked only for the second factor and comes back", async () => {
  server.cli(["user", "create", "--email", "ada@example.com", "--password-stdin"], `${PASSWORD}\n`);
  const app = await startSample();
  // Home: any signed-in user. Ada has no second factor yet: a password it is.
  const page = await browser.newPage();
  await page.goto(app);
  await page.waitForURL(/\/login\?/);
  await submitSignIn(page, "ada@example.com", PASSWORD);
  await page.waitForURL(`${app}/`);
  await page.getByRole("heading", { name: "Home" }).waitFor();
  assert.match(await page.locator("main").innerText(), /with pwd \(acr: none\)/);

  // On another device she sets up an authenticator app.
  const secret = await setUpAuthenticatorAppElsewhere(browser, server, "ada@example.com", PASSWORD);

  // Admin, in the first browser: back to Portcullis for the second factor only.
  await page.getByRole("link", { name: "Admin page" }).click();
  await page.waitForURL(/\/login\/verify/);
  assert.equal(await page.locator("#password").count(), 0, "no second password");
  await screenshot(page, "require-mfa-step-up");
  await page.locator("#code").fill(totp(secret, Date.now() + 30_000));
  await page.locator("#code").press("Enter");
  await page.waitForURL(`${app}/admin`);
  await page.getByRole("heading", { name: "Admin page" }).waitFor();
  assert.equal(await page.getByTestId("admin-claims").innerText(), "Multi-factor sign-in confirmed: acr mfa, amr pwd, otp, mfa.");
  await screenshot(page, "require-mfa-admin");
  // Home again: the stepped-up sign-in is the one kept.
  await page.getByRole("link", { name: "Home" }).click();
  await page.getByRole("heading", { name: "Home" }).waitFor();
  assert.match(await page.locator("main").innerText(), /with pwd, otp, mfa \(acr: mfa\)/);
  await page.close();
});
