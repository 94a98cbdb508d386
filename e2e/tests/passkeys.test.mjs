// Passkeys and security keys in a real browser: Chromium with a DevTools
// virtual authenticator, against the real server, found by label and button text.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { addVirtualAuthenticator, launchBrowser, relyingParty, screenshot, startServer } from "../lib/portcullis.mjs";

const PASSWORD = "tangerine-Quiver-87-lantern";
let server;
let browser;

before(async () => {
  server = await startServer();
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
  await page.goto(`${server.base}/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

test("sign up, create a passkey, sign in with it alone, and the application gets hwk", async () => {
  const page = await browser.newPage();
  const authenticator = await addVirtualAuthenticator(page, {
    transport: "internal",
    hasResidentKey: true,
    hasUserVerification: true,
    isUserVerified: true,
  });

  await page.goto(`${server.base}/signup`);
  await page.getByLabel("Email").fill("ada@example.com");
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await screenshot(page, "signup");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByText("Check your email").waitFor();
  const link = server.outbox().findLast((m) => m.to === "ada@example.com").link;
  await page.goto(link);
  await page.getByRole("button", { name: "Confirm email address" }).click();
  await page.getByText("Your address is confirmed").waitFor();

  await signIn(page, "ada@example.com");
  await page.waitForURL(/\/account$/);
  await page.goto(`${server.base}/account/security`);
  await page.getByLabel("Passkey name").fill("Laptop passkey");
  await screenshot(page, "security");
  await page.getByRole("button", { name: "Create a passkey" }).click();
  await page.getByText("Two-step verification is on.").waitFor();
  await screenshot(page, "recovery-codes");
  const stored = await authenticator.credentials();
  assert.equal(stored.length, 1);
  assert.equal(stored[0].isResidentCredential, true, "a passkey is a discoverable credential");
  await page.goto(`${server.base}/account/security`);
  await page.getByText("Laptop passkey", { exact: true }).waitFor();

  // Autofill (conditional mediation): on the sign-in page the browser offers
  // the passkey in the Email field; the virtual authenticator accepts at once.
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(/\/account$/);
  await page.getByTestId("session-methods").getByText("verified with a passkey.").waitFor();

  // A browser without autofill: the button is the way in.
  await page.addInitScript(() => {
    PublicKeyCredential.isConditionalMediationAvailable = async () => false;
  });
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(/\/login/);

  // An application sends the user to sign in; no email, no password: the passkey alone.
  const rp = await relyingParty(server, "phr");
  await page.goto(rp.url);
  await page.waitForURL(/\/login\?/);
  await screenshot(page, "login");
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  const claims = await rp.claims();
  assert.deepEqual(claims.amr, ["hwk", "user", "mfa"]);
  assert.equal(claims.acr, "phr");
  assert.equal(claims.email, "ada@example.com");
  assert.equal(await page.getByLabel("Password").count(), 0, "the password was never asked for");
  await page.close();
});

test("a security key as the second step after a password", async () => {
  server.cli(["user", "create", "--email", "bob@example.com", "--password-stdin"], `${PASSWORD}\n`);
  const page = await browser.newPage();
  await addVirtualAuthenticator(page, { transport: "usb", hasResidentKey: false, hasUserVerification: false });

  await signIn(page, "bob@example.com");
  await page.waitForURL(/\/account$/);
  await page.goto(`${server.base}/account/security`);
  await page.getByLabel("Security key name").fill("Blue key");
  await page.getByRole("button", { name: "Add a security key" }).click();
  await page.getByText("Two-step verification is on.").waitFor();
  await page.getByRole("link", { name: "Continue" }).click();
  await page.getByText("Blue key", { exact: true }).waitFor();
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(/\/login/);

  await signIn(page, "bob@example.com");
  await page.waitForURL(/\/login\/verify/);
  await screenshot(page, "second-step");
  // "Try another method": every method this sign-in accepts, on one page.
  await page.getByRole("link", { name: "Try another method" }).click();
  await page.waitForURL(/\/login\/verify\/methods/);
  await page.getByRole("button", { name: "Use a recovery code" }).waitFor();
  await screenshot(page, "other-methods");
  await page.getByRole("button", { name: "Use a security key or passkey" }).click();
  await page.waitForURL(/\/login\/verify\?/);
  await page.getByRole("button", { name: "Use a security key or passkey" }).click();
  await page.waitForURL(/\/account$/);
  await page.getByTestId("session-methods").getByText("verified with your password and a security key.").waitFor();
  await screenshot(page, "account");
  await page.close();
});

test("a cancelled prompt explains itself and leaves the user on the page", async () => {
  server.cli(["user", "create", "--email", "cy@example.com", "--password-stdin"], `${PASSWORD}\n`);
  const page = await browser.newPage();
  // No authenticator answers: the browser's prompt times out or is cancelled.
  const authenticator = await addVirtualAuthenticator(page, { transport: "usb", hasResidentKey: false, hasUserVerification: false });
  await signIn(page, "cy@example.com");
  await page.waitForURL(/\/account$/);
  await page.goto(`${server.base}/account/security`);
  await page.evaluate(() => {
    // Simulate the user pressing Cancel in the browser's dialog.
    navigator.credentials.create = () => Promise.reject(new DOMException("cancelled", "NotAllowedError"));
  });
  await page.getByRole("button", { name: "Add a security key" }).click();
  await page.getByText("The request was cancelled or timed out").waitFor();
  assert.equal((await authenticator.credentials()).length, 0);
  assert.match(page.url(), /\/account\/security$/);
  await page.close();
});

test("an application requiring MFA: a user without a factor creates a passkey inline, then continues to it", async () => {
  server.cli(["user", "create", "--email", "dee@example.com", "--password-stdin"], `${PASSWORD}\n`);
  const page = await browser.newPage();
  await addVirtualAuthenticator(page, {
    transport: "internal",
    hasResidentKey: true,
    hasUserVerification: true,
    isUserVerified: true,
  });
  const rp = await relyingParty(server, "mfa");
  await page.goto(rp.url);
  await page.waitForURL(/\/login\?/);
  await page.getByLabel("Email").fill("dee@example.com");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(/\/login\/enroll/);
  for (const name of ["Set up authenticator app", "Create a passkey", "Add a security key", "Add a phone number"]) {
    await page.getByRole("button", { name }).waitFor();
  }
  await screenshot(page, "inline-enrollment");
  await page.getByRole("button", { name: "Create a passkey" }).click();
  await page.getByText("Two-step verification is on.").waitFor();
  await page.getByRole("link", { name: "Continue" }).click();
  const claims = await rp.claims();
  assert.deepEqual(claims.amr, ["pwd", "hwk", "mfa"]);
  assert.equal(claims.acr, "mfa");
  assert.equal(claims.email, "dee@example.com");
  await page.close();
});
