// The client libraries applications use, unchanged, against a real server in
// a real browser: Node's openid-client (v6) and Python's Authlib (the Rust
// `openidconnect` crate is driven by crates/portcullis/tests/api/oidc.rs).
// Each library validates the ID token itself (signature, nonce, c_hash for
// the hybrid flow); each relying party answers what its library validated.
// The same scenario for both: code + PKCE with a password, a step-up with
// acr_values=mfa that asks only for the second factor, refresh, hybrid
// `code id_token` with form_post, and RP-initiated logout.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { freePort, launchBrowser, setUpAuthenticatorAppElsewhere, spawnReady, startServer, submitSignIn, totp } from "../lib/portcullis.mjs";
import { startOpenIdClientRp } from "../lib/rp_openid_client.mjs";

const PASSWORD = "tangerine-Quiver-87-lantern";
const e2e = join(dirname(fileURLToPath(import.meta.url)), "..");
const python = process.env.AUTHLIB_PYTHON || join(e2e, ".venv", "bin", "python");
let server;
let browser;
const stops = [];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  for (const stop of stops) await stop();
  await browser?.close();
  await server?.stop();
});

/** Registers a confidential client for a relying party on `port`. */
function register(name, port) {
  const base = `http://127.0.0.1:${port}`;
  return JSON.parse(
    server.cli(["client", "create", "--name", name, "--redirect-uri", `${base}/cb`, "--post-logout-redirect-uri", `${base}/bye`]),
  );
}

const libraries = {
  async "openid-client"() {
    const port = await freePort();
    const { client_id, client_secret } = register("openid-client app", port);
    const rp = await startOpenIdClientRp(port, server.base, client_id, client_secret);
    stops.push(rp.close);
    return rp.base;
  },
  async authlib() {
    if (!existsSync(python)) throw new Error(`${python} is missing: scripts/e2e makes the virtual environment (e2e/requirements.txt)`);
    const port = await freePort();
    const { client_id, client_secret } = register("Authlib app", port);
    const child = await spawnReady(python, [join(e2e, "rp", "authlib_rp.py"), String(port), server.base, client_id, client_secret], "ready");
    stops.push(async () => child.kill("SIGTERM"));
    return `http://127.0.0.1:${port}`;
  },
};

/** What the relying party page says its library validated. */
async function result(page) {
  const text = await page.locator("#result").innerText();
  const body = JSON.parse(text);
  assert.ok(!body.error, `the relying party failed: ${text}`);
  return body;
}

for (const [library, start] of Object.entries(libraries)) {
  describe(library, () => {
    test("code + PKCE, a step-up to MFA, refresh, hybrid with form_post, RP-initiated logout", async () => {
      const email = `${library}@example.com`;
      server.cli(["user", "create", "--email", email, "--password-stdin"], `${PASSWORD}\n`);
      const rp = await start();
      const page = await browser.newPage();

      // A password sign-in (no second factor yet): the library validates the ID token.
      await page.goto(`${rp}/start`);
      await page.waitForURL(/\/login\?/);
      await submitSignIn(page, email, PASSWORD);
      await page.waitForURL(`${rp}/cb?**`);
      let signedIn = await result(page);
      assert.equal(signedIn.library, library);
      assert.deepEqual(signedIn.claims.amr, ["pwd"]);
      assert.equal(signedIn.claims.acr, undefined);
      assert.equal(signedIn.claims.email, email);
      assert.equal(signedIn.claims.iss, server.base);
      assert.equal(signedIn.alg, "ES256");

      // An authenticator app, set up from another browser.
      const secret = await setUpAuthenticatorAppElsewhere(browser, server, email, PASSWORD);

      // acr_values=mfa: the second factor only, then honest claims.
      await page.goto(`${rp}/start?acr=mfa`);
      await page.waitForURL(/\/login\/verify/);
      assert.equal(await page.locator("#password").count(), 0, "no second password");
      await page.locator("#code").fill(totp(secret, Date.now() + 30_000));
      await page.locator("#code").press("Enter");
      await page.waitForURL(`${rp}/cb?**`);
      signedIn = await result(page);
      assert.deepEqual(signedIn.claims.amr, ["pwd", "otp", "mfa"]);
      assert.equal(signedIn.claims.acr, "mfa");

      // Refresh: a new access token, the refresh token rotated, userinfo answers.
      await page.goto(`${rp}/refresh`);
      const refreshed = await result(page);
      assert.equal(refreshed.rotated, true);
      assert.equal(refreshed.new_access_token, true);
      assert.equal(refreshed.userinfo.email, email);

      // Hybrid `code id_token` posted back (form_post). The library checks
      // c_hash: a code swapped on the way is refused before it is used.
      await page.route(`${rp}/cb`, (route) => {
        const form = new URLSearchParams(route.request().postData() ?? "");
        form.set("code", `${form.get("code")}x`);
        return route.continue({ postData: form.toString() });
      });
      await page.goto(`${rp}/start?hybrid=1`);
      await page.waitForURL(`${rp}/cb`);
      const swapped = JSON.parse(await page.locator("#result").innerText());
      assert.match(`${swapped.error} ${swapped.cause}`, /c_hash/, JSON.stringify(swapped));
      await page.unroute(`${rp}/cb`);
      await page.goto(`${rp}/start?hybrid=1`);
      await page.waitForURL(`${rp}/cb`);
      const hybrid = await result(page);
      assert.equal(hybrid.flow, "hybrid");
      assert.deepEqual(hybrid.claims.amr, ["pwd", "otp", "mfa"]);

      // RP-initiated logout ends the provider's session and comes back.
      await page.goto(`${rp}/logout`);
      await page.waitForURL(`${rp}/bye?**`);
      assert.equal((await result(page)).signed_out, true);
      await page.goto(`${server.base}/account`);
      await page.waitForURL(/\/login/);
      await page.close();
    });
  });
}
