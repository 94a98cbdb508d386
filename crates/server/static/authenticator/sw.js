// The companion's service worker: shows a notification for each sign-in
// request pushed to this phone, and opens the companion when it is tapped.
// The payload names the request only (no secret, no number): the companion
// fetches what it shows over calls signed with the device key.
"use strict";

const WORDS = __WORDS__;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (_) {
    data = {};
  }
  if (data.type !== "sign_in_request") return;
  event.waitUntil(
    self.registration.showNotification(WORDS.title, {
      body: WORDS.body,
      tag: `portcullis-${data.request}`,
      requireInteraction: true,
      data: { request: data.request },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((c) => new URL(c.url).pathname === "/authenticator");
      return open ? open.focus() : self.clients.openWindow("/authenticator");
    }),
  );
});
