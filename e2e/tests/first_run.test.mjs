// First run without default credentials: the setup link a fresh server logs
// opens a page that creates the first administrator, who sets up a second
// factor before the admin console opens; the link works once.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, screenshot, startServer, totp } from "../lib/portcullis.mjs";

const PASSWORD = "tangerine-Quiver-87-lantern";
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

/** The setup link in the server's log (logged before it is ready). */
function setupLink() {
  const found = server.log().match(/http:\/\/\S+?\/setup\?token=[A-Za-z0-9_-]+/);
  assert.ok(found, `no setup link in the log:\n${server.log()}`);
  return found[0];
}

test("the logged setup link creates the first administrator, who sets up a factor before the console", async () => {
  const link = setupLink();
  assert.ok(link.startsWith(`${server.base}/setup?token=`), link);
  const page = await browser.newPage();
  await page.goto(link);
  assert.equal(await page.locator("h1").innerText(), "Create the first administrator");
  await screenshot(page, "first-admin");
  await page.locator("#email").fill("root@example.com");
  await page.locator("#name").fill("Root");
  await page.locator("#password").fill(PASSWORD);
  await page.locator("#confirm").fill(PASSWORD);
  await page.getByRole("button", { name: "Create administrator" }).click();

  // The password alone opens nothing: the sign-in waits for a second factor.
  await page.waitForURL(/\/login\/enroll/);
  await page.locator('form[action="/login/enroll/totp"] button').click();
  const secret = (await page.getByTestId("totp-secret").innerText()).trim();
  await page.locator("#code").fill(totp(secret));
  await page.locator('form[action="/login/enroll"] button[type=submit]').click();
  await page.getByTestId("recovery-codes").waitFor();
  await page.locator("a.button:not([download])").click();
  await page.waitForURL(/\/admin\/users/);
  await page.getByText("root@example.com").first().waitFor();
  await screenshot(page, "first-admin-console");

  // Used once: the same link now says so, in another browser too.
  const other = await browser.newPage();
  const again = await other.goto(link);
  assert.equal(again.status(), 400);
  await other.getByText("This setup link has expired or was used").waitFor();
  await screenshot(other, "first-admin-link-used");
});
