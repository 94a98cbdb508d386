// Control for users and operators, in a real browser: "Remove access" on the
// security page, an auditor's read-only console, and a client that registers
// itself with openid-client's dynamicClientRegistration (RFC 7591) and then
// signs a user in once the user allowed it, the library checking the ID token itself.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import * as oidc from "openid-client";
import { addVirtualAuthenticator, freePort, launchBrowser, relyingParty, screenshot, startServer } from "../lib/portcullis.mjs";

const PASSWORD = "tangerine-Quiver-87-lantern";
const REGISTRATION = { PORTCULLIS_REGISTRATION__MODE: "token" };
let server;
let browser;

before(async () => {
  server = await startServer(REGISTRATION);
  browser = await launchBrowser();
});

after(async () => {
  // The server stops even when closing the browser reports accessibility failures.
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

async function signIn(page, email) {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

test("a user removes an application's access from the security page", async () => {
  server.cli(["user", "create", "--email", "ann@example.com", "--password-stdin"], `${PASSWORD}\n`);
  const page = await browser.newPage();
  const rp = await relyingParty(server);
  await page.goto(rp.url);
  await page.waitForURL(/\/login\?/);
  await signIn(page, "ann@example.com");
  const claims = await rp.claims();
  assert.equal(claims.email, "ann@example.com");

  await page.goto(`${server.base}/account/security`);
  const listed = page.getByTestId("app-access");
  await listed.getByText("E2E app", { exact: true }).waitFor();
  assert.match(await listed.innerText(), /can see your email address/);
  await screenshot(page, "app-access");
  await page.getByRole("button", { name: "Remove access for E2E app" }).click();
  await page.getByText("That application's access was removed").waitFor();
  assert.equal(await page.getByTestId("app-access").count(), 0);
  await page.getByText("No application has access to your account.").waitFor();
  await page.getByText("An application's access was removed").waitFor();
  assert.equal(server.cli(["user", "grants", "--email", "ann@example.com"]).trim(), "", "the command line agrees");
  await page.close();
});

test("an auditor reads the admin console, which offers no change and refuses one", async () => {
  server.cli(["user", "create", "--email", "aud@example.com", "--password-stdin"], `${PASSWORD}\n`);
  server.cli(["user", "grant-auditor", "--email", "aud@example.com"]);
  const page = await browser.newPage();
  await addVirtualAuthenticator(page, { transport: "usb", hasResidentKey: false, hasUserVerification: false });
  await page.goto(`${server.base}/admin/users`);
  await signIn(page, "aud@example.com");
  // The console's door is the admins': a second factor first, set up on the way.
  await page.waitForURL(/\/login\/enroll/);
  await page.getByLabel("Security key name").fill("Audit key");
  await page.getByRole("button", { name: "Add a security key" }).click();
  await page.getByText("Two-step verification is on.").waitFor();
  await page.getByRole("link", { name: "Continue" }).click();
  await page.waitForURL(/\/admin\/users$/);
  await page.getByTestId("read-only").waitFor();
  await page.getByText("aud@example.com").first().waitFor();
  await screenshot(page, "auditor-users");
  for (const button of ["Lock", "Make admin", "Reset MFA"]) {
    assert.equal(await page.getByRole("button", { name: button }).count(), 0, `no ${button} button`);
  }
  await page.getByRole("link", { name: "Applications", exact: true }).first().click();
  await page.getByTestId("read-only").waitFor();
  await page.goto(`${server.base}/admin/clients`);
  await page.getByText("E2E app").first().waitFor();
  assert.equal(await page.getByRole("button", { name: /Save policy|Rotate secret|Create application/ }).count(), 0);
  await page.goto(`${server.base}/admin/audit`);
  await page.getByTestId("audit-log").waitFor();
  await screenshot(page, "auditor-audit");
  // A change sent anyway (a forged form with a valid CSRF token) is refused and recorded.
  const status = await page.evaluate(async () => {
    const csrf = document.querySelector("input[name=csrf_token]").value;
    const body = new URLSearchParams({ csrf_token: csrf, email: "aud@example.com", action: "make_admin", q: "" });
    return (await fetch("/admin/users", { method: "POST", body })).status;
  });
  assert.equal(status, 403);
  await page.reload();
  await page.getByTestId("audit-event").filter({ hasText: "console_change_refused" }).first().waitFor();
  await page.close();
});

test("openid-client registers a client dynamically and signs a user in with it", async () => {
  const { initial_access_token } = JSON.parse(server.cli(["client", "registration-token"]));
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/cb`;
  const config = await oidc.dynamicClientRegistration(
    new URL(server.base),
    { redirect_uris: [redirectUri], client_name: "Registered by openid-client", token_endpoint_auth_method: "client_secret_basic" },
    undefined,
    { initialAccessToken: initial_access_token, execute: [oidc.allowInsecureRequests] },
  );
  const metadata = config.clientMetadata();
  assert.ok(metadata.client_id && metadata.client_secret && metadata.registration_access_token);
  await assert.rejects(
    oidc.dynamicClientRegistration(new URL(server.base), { redirect_uris: [redirectUri] }, undefined, {
      initialAccessToken: initial_access_token,
      execute: [oidc.allowInsecureRequests],
    }),
    "the initial access token is single use",
  );

  let deliver;
  const callback = new Promise((r) => (deliver = r));
  const receiver = createServer((req, res) => {
    res.end("signed in");
    deliver(new URL(req.url, redirectUri));
  });
  await new Promise((r) => receiver.listen(port, "127.0.0.1", r));
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = randomBytes(16).toString("base64url");
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid email",
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  const page = await browser.newPage();
  await page.goto(url.href);
  await page.waitForURL(/\/login\?/);
  await signIn(page, "ann@example.com");
  // A client that registered itself is never answered silently: the user allows it first.
  await page.getByText("Allow Registered by openid-client?").waitFor();
  await screenshot(page, "consent");
  await page.getByRole("button", { name: "Allow" }).click();
  const back = await callback;
  receiver.close();
  const tokens = await oidc.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  const claims = tokens.claims();
  assert.equal(claims.email, "ann@example.com");
  assert.deepEqual(claims.amr, ["pwd"]);
  await page.close();
});
