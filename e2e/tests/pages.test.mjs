// The pages as people meet them: plain words (no protocol codes), devices by
// name, German for a German browser or by choice, the keyboard alone through
// the sign-in and the second step, errors announced, and axe-core on every
// page (the harness checks each page it loads and each screenshot).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { checked, launchBrowser, screenshot, startServer, totp } from "../lib/portcullis.mjs";

const PASSWORD = "tangerine-Quiver-87-lantern";
let server;
let browser;

before(async () => {
  // Defaults: text messages on, to the development outbox.
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

/** No protocol code a user-facing page might leak (RFC 8176 values, claim names). */
function assertPlainWords(text, where) {
  for (const code of ["pwd", "otp", "hwk", "swk", "amr", "acr", "mfa"]) {
    assert.doesNotMatch(text, new RegExp(`\\b${code}\\b`), `${where} says "${code}"`);
  }
}

async function signIn(page, email) {
  await page.goto(`${server.base}/login`);
  await page.locator("#email").fill(email);
  await page.locator("#password").fill(PASSWORD);
  await page.locator("#password").press("Enter");
}

/** Sets up an authenticator app from the security page; returns its secret. */
async function addAuthenticatorApp(page, setUp, verify) {
  await page.goto(`${server.base}/account/security`);
  await page.getByRole("button", { name: setUp }).click();
  const secret = (await page.getByTestId("totp-secret").innerText()).trim();
  await page.locator("#code").fill(totp(secret));
  await page.getByRole("button", { name: verify, exact: true }).click();
  await page.getByTestId("recovery-codes").waitFor();
  return secret;
}

test("a user without a second factor is invited, sees devices by name, and no protocol code", async () => {
  server.cli(["user", "create", "--email", "ben@example.com", "--password-stdin"], `${PASSWORD}\n`);
  const page = await browser.newPage();
  await signIn(page, "ben@example.com");
  await page.waitForURL(/\/account$/);
  assert.equal(await page.getByTestId("session-methods").innerText(), "This session was verified with your password.");
  await page.getByTestId("mfa-invite").getByText("Protect your account.").waitFor();
  assertPlainWords(await page.locator("main").innerText(), "the account page");
  await screenshot(page, "account-invite");

  await page.goto(`${server.base}/account/security`);
  const session = page.getByTestId("session-device");
  assert.match(await session.innerText(), /^Chrome \d+ on Linux$/, "the session is named by browser and system");
  assert.equal(await page.getByTestId("recovery-codes-left").count(), 0, "no recovery-code count without a factor");
  // The phone number field looks like every other field.
  const style = (selector) =>
    page.locator(selector).first().evaluate((e) => {
      const s = getComputedStyle(e);
      return [s.borderTopWidth, s.borderTopStyle, s.borderTopColor, s.paddingTop, s.fontSize, s.borderRadius].join(" ");
    });
  assert.equal(await style("#phone"), await style("#name-passkey"));
  assertPlainWords(await page.locator("main").innerText(), "the security page");
  await screenshot(page, "security-no-factor");

  await addAuthenticatorApp(page, "Set up authenticator app", "Verify");
  await page.goto(`${server.base}/account/security`);
  assert.equal(await page.getByTestId("recovery-codes-left").innerText(), "10 codes left");
  const events = await page.getByTestId("security-events").innerText();
  assert.match(events, /Sign-in method added/);
  assert.match(events, /Chrome \d+ on Linux/, "events name the browser too");
  assert.doesNotMatch(events, /Mozilla|AppleWebKit/, "never the raw user agent");
  await screenshot(page, "security-devices");
  await page.close();
});

test("the sign-in and the second step work with the keyboard alone, and a wrong code is announced", async () => {
  server.cli(["user", "create", "--email", "kay@example.com", "--password-stdin"], `${PASSWORD}\n`);
  const setup = await browser.newPage();
  await signIn(setup, "kay@example.com");
  await setup.waitForURL(/\/account$/);
  const secret = await addAuthenticatorApp(setup, "Set up authenticator app", "Verify");
  await setup.close();

  const page = await browser.newPage();
  const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim());
  await page.goto(`${server.base}/login`);
  assert.equal(await focused(), "email", "the sign-in page starts in the email field");
  await page.keyboard.type("kay@example.com");
  await page.keyboard.press("Tab");
  assert.equal(await focused(), "password");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Tab");
  assert.equal(await focused(), "Sign in", "the next stop is the sign-in button");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/login\/verify/);
  await screenshot(page, "second-step-keyboard");
  assert.equal(await focused(), "code", "the second step starts in the code field");

  // A wrong code: the field is marked, its error tied to it, and focus is back on it.
  await page.keyboard.type("000000");
  await page.keyboard.press("Enter");
  await page.locator("#code-error").waitFor();
  assert.equal(await focused(), "code");
  assert.equal(await page.locator("#code").getAttribute("aria-invalid"), "true");
  assert.equal(await page.locator("#code").getAttribute("aria-describedby"), "code-error");
  await screenshot(page, "second-step-wrong-code");

  await page.keyboard.type(totp(secret, Date.now() + 30_000));
  await page.keyboard.press("Tab");
  assert.equal(await focused(), "remember");
  await page.keyboard.press("Tab");
  assert.equal(await focused(), "Verify");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/account$/);
  assert.equal(
    await page.getByTestId("session-methods").innerText(),
    "This session was verified with your password and your authenticator app.",
  );
  // "Try another method" and every way it offers, each page checked by axe.
  await page.close();
});

test("a German browser gets German pages, and a language chosen on the account page sticks", async () => {
  server.cli(["user", "create", "--email", "uta@example.com", "--admin", "--password-stdin"], `${PASSWORD}\n`);
  const page = await browser.newPage({ locale: "de-DE" });
  await page.goto(`${server.base}/login`);
  await page.getByRole("heading", { name: "Anmelden" }).waitFor();
  assert.equal(await page.locator("html").getAttribute("lang"), "de");
  await page.locator("#email").fill("uta@example.com");
  await page.locator("#password").fill("wrong-password-entirely");
  await page.getByRole("button", { name: "Anmelden", exact: true }).click();
  await page.getByRole("alert").getByText("E-Mail-Adresse oder Passwort ist falsch.").waitFor();

  await signIn(page, "uta@example.com");
  await page.waitForURL(/\/account$/);
  assert.equal(await page.getByTestId("session-methods").innerText(), "Diese Sitzung wurde mit Ihrem Passwort bestätigt.");
  const secret = await addAuthenticatorApp(page, "Authenticator-App einrichten", "Bestätigen");
  await page.goto(`${server.base}/account/security`);
  await page.getByRole("heading", { name: "Sicherheit", exact: true }).waitFor();
  assert.match(await page.getByTestId("session-device").first().innerText(), /^Chrome \d+ unter Linux$/);
  assert.equal(await page.getByTestId("recovery-codes-left").innerText(), "10 Codes übrig");

  // The second step and the admin console in German.
  await page.getByRole("button", { name: "Abmelden" }).click();
  await signIn(page, "uta@example.com");
  await page.getByRole("heading", { name: "Bestätigung in zwei Schritten" }).waitFor();
  await page.getByRole("link", { name: "Andere Methode wählen" }).click();
  await page.getByRole("heading", { name: "Wählen Sie, wie Sie sich bestätigen" }).waitFor();
  await page.getByRole("button", { name: "Authenticator-App verwenden" }).click();
  await page.locator("#code").fill(totp(secret, Date.now() + 30_000));
  await page.getByRole("button", { name: "Bestätigen", exact: true }).click();
  await page.waitForURL(/\/account$/);
  await page.goto(`${server.base}/admin/users`);
  await page.getByRole("heading", { name: "Administration", exact: true }).waitFor();
  await page.close();

  // An English browser; the user picks German on the account page.
  const english = await browser.newPage({ locale: "en-US" });
  server.cli(["user", "create", "--email", "eli@example.com", "--password-stdin"], `${PASSWORD}\n`);
  await signIn(english, "eli@example.com");
  await english.waitForURL(/\/account$/);
  await english.getByRole("heading", { name: "Your account" }).waitFor();
  await english.getByLabel("Show pages and emails in").selectOption("de");
  await english.getByRole("button", { name: "Save" }).click();
  await english.getByRole("heading", { name: "Ihr Konto" }).waitFor();
  // Emails follow the choice: a new factor's notice comes in German.
  await addAuthenticatorApp(english, "Authenticator-App einrichten", "Bestätigen");
  const deadline = Date.now() + 10_000;
  let notice;
  while (!(notice = server.outbox().findLast((m) => m.to === "eli@example.com")) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(notice?.subject, "Portcullis: Eine Anmeldemethode wurde hinzugefügt");
  // Another browser of the same user is German after signing in.
  const other = await browser.newPage({ locale: "en-US" });
  await signIn(other, "eli@example.com");
  await other.getByRole("heading", { name: "Bestätigung in zwei Schritten" }).waitFor();
  await other.close();
  await english.close();
});

/**
 * Every page a user meets, in one language, found by selectors rather than
 * words: the public pages, a first sign-in that must set up a factor, the
 * account, security and admin pages, and a second step. Each is checked by
 * axe and kept as e2e/output/NAME.LANG.png.
 */
async function tour(locale, lang, headings) {
  const email = `tour-${lang}@example.com`;
  server.cli(["user", "create", "--email", email, "--admin", "--password-stdin"], `${PASSWORD}\n`);
  server.cli(["user", "require-mfa", "--email", email]);
  const page = await browser.newPage({ locale });
  const shot = async (name) => {
    assert.equal(await page.locator("html").getAttribute("lang"), lang, `${name} is in ${lang}`);
    await screenshot(page, `${name}.${lang}`);
  };
  for (const [path, name] of [
    ["/login", "sign-in"],
    ["/signup", "sign-up"],
    ["/forgot-password", "forgot-password"],
    ["/reset-password?token=expired", "invalid-link"],
    ["/no/such/page", "not-found"],
  ]) {
    await page.goto(`${server.base}${path}`);
    await shot(name);
  }
  await signIn(page, email);
  await page.waitForURL(/\/login\/enroll/);
  assert.equal(await page.locator("h1").innerText(), headings.enroll);
  await shot("enroll");
  await page.locator('form[action="/login/enroll/totp"] button').click();
  const secret = (await page.getByTestId("totp-secret").innerText()).trim();
  await shot("totp-setup");
  await page.locator("#code").fill(totp(secret));
  await page.locator('form[action="/login/enroll"] button[type=submit]').click();
  await page.getByTestId("recovery-codes").waitFor();
  await shot("recovery-codes");
  await page.locator("a.button:not([download])").click();
  await page.waitForURL(/\/account/);
  assert.equal(await page.locator("h1").innerText(), headings.account);
  assertPlainWords(await page.getByTestId("session-methods").innerText(), `the ${lang} account page`);
  await shot("account");
  for (const [path, name] of [
    ["/account/security", "security"],
    ["/account/protect", "protect"],
    ["/admin/users", "admin-users"],
    ["/admin/clients", "admin-clients"],
    ["/admin/audit", "admin-audit"],
    ["/admin/mfa", "admin-mfa"],
    ["/end-session", "end-session"],
  ]) {
    await page.goto(`${server.base}${path}`);
    await shot(name);
  }
  await page.locator('header form[action="/logout"] button').click();
  await page.waitForURL(/\/login/);
  await signIn(page, email);
  await page.waitForURL(/\/login\/verify/);
  assert.equal(await page.locator("h1").innerText(), headings.secondStep);
  await shot("second-step");
  await page.locator('a[href^="/login/verify/methods"]').click();
  await shot("methods");
  await page.goto(`${server.base}/login/verify?method=recovery&next=%2Faccount`);
  await shot("recovery-code");
  await page.goto(`${server.base}/login/verify?method=totp&next=%2Faccount`);
  await page.locator("#code").fill(totp(secret, Date.now() + 30_000));
  await page.locator('form[action="/login/verify"] button[type=submit]').click();
  await page.waitForURL(/\/account$/);
  await page.close();
}

test("every page a user meets, in English", () =>
  tour("en-GB", "en", { enroll: "Set up two-step verification", account: "Your account", secondStep: "Two-step verification" }));

test("every page a user meets, in German", () =>
  tour("de-DE", "de", { enroll: "Bestätigung in zwei Schritten einrichten", account: "Ihr Konto", secondStep: "Bestätigung in zwei Schritten" }));

test("axe checked the main pages", () => {
  for (const path of ["/login", "/signup", "/forgot-password", "/login/enroll", "/login/verify", "/login/verify/methods", "/account", "/account/security", "/account/protect", "/admin/users", "/admin/clients", "/admin/audit", "/admin/mfa", "/end-session"]) {
    assert.ok(checked.has(path), `${path} was not checked`);
  }
});
