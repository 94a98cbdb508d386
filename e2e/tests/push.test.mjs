// Sign-in approval on a phone, in real browsers: one page is the phone (the
// companion at /authenticator, paired through the security page's link, its
// key made by WebCrypto), another is the desktop signing in. Headless
// Chromium reaches no push service, so the companion finds requests by
// polling, as it does on a phone without notifications.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { deliverPush, launchBrowser, postgresDatabase, relyingParty, screenshot, startServer } from "../lib/portcullis.mjs";

const PASSWORD = "tangerine-Quiver-87-lantern";
let server;
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

async function signIn(page, email) {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

/** On the second-step page: sends the request; the number the page shows. */
async function sendRequest(desktop) {
  await desktop.waitForURL(/\/login\/verify/);
  await desktop.getByRole("button", { name: "Send a sign-in request to your phone" }).click();
  const number = desktop.getByTestId("push-number");
  await number.filter({ hasText: /^\d\d$/ }).waitFor();
  return (await number.textContent()).trim();
}

/** The request as the phone lists it. */
async function requestOnPhone(phone) {
  const request = phone.getByTestId("push-request");
  await request.first().waitFor({ timeout: 15_000 });
  return request.first();
}

/**
 * Creates `email`, pairs a phone for it through the security page's link
 * (the phone: its own browser context, its own storage and key), and
 * confirms it with a first approval. Returns the desktop page, signed in, and the phone.
 */
async function pairedUser(email, phoneName, shots) {
  server.cli(["user", "create", "--email", email, "--password-stdin"], `${PASSWORD}\n`);
  const desktop = await browser.newPage();
  await desktop.goto(`${server.base}/login`);
  await signIn(desktop, email);
  await desktop.waitForURL(/\/account$/);
  await desktop.goto(`${server.base}/account/security`);
  await desktop.getByRole("button", { name: "Set up sign-in approvals on your phone" }).click();
  await desktop.getByRole("img", { name: "QR code that opens the Portcullis app on your phone" }).waitFor();
  if (shots) await screenshot(desktop, "push-pairing");
  const link = await desktop.getByTestId("push-pairing-link").getAttribute("href");
  assert.match(link, /\/authenticator#pair=/);

  // Notifications allowed: the companion subscribes (no push service answers
  // here, so it falls back to listing requests itself).
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, permissions: ["notifications"] });
  await phone.goto(link);
  await phone.getByLabel("Name of this phone").fill(phoneName);
  if (shots) await screenshot(phone, "companion-pairing");
  await phone.getByRole("button", { name: "Pair this phone" }).click();
  await phone.getByText("This phone is set up. Sign-in requests appear here.").waitFor();
  assert.equal(new URL(phone.url()).hash, "", "the one-time token leaves the address bar");
  // The key is WebCrypto's, non-extractable, kept in IndexedDB.
  const key = await phone.evaluate(
    () =>
      new Promise((resolve) => {
        const open = indexedDB.open("portcullis-authenticator", 1);
        open.onsuccess = () => {
          const get = open.result.transaction("device").objectStore("device").get("self");
          get.onsuccess = () => resolve([get.result.privateKey.extractable, get.result.privateKey.algorithm.namedCurve]);
        };
      }),
  );
  assert.deepEqual(key, [false, "P-256"]);
  await phone.getByTestId("companion-device").getByText(phoneName).waitFor();

  // The phone is now the account's second factor: the security page asks
  // for it, which is the first approval (a step-up of this session).
  await desktop.getByRole("link", { name: "I have set up my phone" }).click();
  const first = await sendRequest(desktop);
  await (await requestOnPhone(phone)).getByRole("button", { name: `Approve with ${first}` }).click();
  await desktop.waitForURL(/\/account\/security$/);
  await desktop.getByText(phoneName, { exact: true }).waitFor();
  await desktop.getByText("Phone for sign-in approvals").first().waitFor();
  await desktop.getByRole("button", { name: "Sign out", exact: true }).click();
  await desktop.waitForURL(/\/login/);
  return { desktop, phone };
}

// The same scenarios on SQLite (with the screenshots) and on PostgreSQL.
for (const backend of ["sqlite", "postgres"]) {
  describe(`on ${backend}`, () => {
    const shots = backend === "sqlite";
    const db = backend === "postgres" ? postgresDatabase() : null;
    // No PostgreSQL outside CI: skipped, loudly (postgresDatabase says so).
    const skip = backend === "postgres" && !db;
    before(async () => {
      if (!skip) server = await startServer(db ? { PORTCULLIS_DATABASE_URL: db.url } : {});
    });
    after(async () => {
      await server?.stop();
      server = null;
      db?.drop();
    });

    test("pair a phone through the link; an application asking for MFA gets swk after the right number", { skip }, async () => {
      const { desktop, phone } = await pairedUser("eve@example.com", "Eve's phone", shots);
      const rp = await relyingParty(server, "mfa");
      await desktop.goto(rp.url);
      await desktop.waitForURL(/\/login\?/);
      await signIn(desktop, "eve@example.com");
      const number = await sendRequest(desktop);
      if (shots) await screenshot(desktop, "push-waiting");
      const request = await requestOnPhone(phone);
      await request.getByText("E2E app").waitFor();
      // A pushed request becomes a notification: the service worker's part,
      // the message delivered through DevTools.
      const id = await request.getAttribute("data-request");
      const shown = await deliverPush(phone, "/authenticator", { type: "sign_in_request", request: id, expires_at: 0 });
      assert.deepEqual(shown, [["Sign-in request", "Someone is signing in to your account. Tap to review.", `portcullis-${id}`]]);
      if (shots) await screenshot(phone, "companion-request");
      assert.equal(await request.getByTestId("push-choice").count(), 3, "three numbers to pick from");
      await request.getByRole("button", { name: `Approve with ${number}` }).click();
      await phone.getByText("Approved. Go back to the sign-in page").waitFor();
      const claims = await rp.claims();
      assert.deepEqual(claims.amr, ["pwd", "swk", "mfa"]);
      assert.equal(claims.acr, "mfa");
      assert.equal(claims.email, "eve@example.com");
      await desktop.close();
      await phone.close();
    });

    test("a denial ends the attempt and emails the owner; a wrong number ends it too", { skip }, async () => {
      const { desktop, phone } = await pairedUser("fay@example.com", "Fay's phone", false);
      await desktop.goto(`${server.base}/login`);
      await signIn(desktop, "fay@example.com");
      await sendRequest(desktop);
      // Nothing arrives on the phone by push here: after ten seconds the page says where to look.
      await desktop.getByText("Open the Portcullis app on your phone").waitFor({ timeout: 15_000 });
      if (shots) await screenshot(desktop, "push-waiting-hint");
      await (await requestOnPhone(phone)).getByRole("button", { name: "Deny: this wasn't me" }).click();
      await phone.getByText("Denied. We stopped the sign-in").waitFor();
      await desktop.getByText("The sign-in was denied on your phone").waitFor();
      if (shots) await screenshot(desktop, "push-denied");
      const told = () => server.outbox().some((m) => m.to === "fay@example.com" && m.subject.includes("denied on your phone"));
      for (let i = 0; i < 100 && !told(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(told(), "the owner is emailed");

      await desktop.goto(`${server.base}/login`);
      await signIn(desktop, "fay@example.com");
      const shown = await sendRequest(desktop);
      const offered = (await requestOnPhone(phone)).getByTestId("push-choice");
      const choices = (await offered.allTextContents()).map((c) => c.trim());
      const wrong = choices.find((c) => c !== shown);
      await offered.filter({ hasText: new RegExp(`^${wrong}$`) }).click();
      await phone.getByText("That was not the number on the sign-in page").waitFor();
      await desktop.getByText("Another number was tapped on your phone").waitFor();
      if (shots) await screenshot(phone, "companion-wrong-number");
      await desktop.close();
      await phone.close();
    });
  });
}
