// The Portcullis companion: approves sign-ins from this phone.
//
// Pairing (the security page's link, #pair=TOKEN): a P-256 key pair is made
// with WebCrypto, its private half non-extractable (kept as a CryptoKey in
// IndexedDB: this page can sign with it, nothing can read it out); then, if
// the user allows notifications, a Web Push subscription to the server's
// VAPID key. The public key, the subscription and a name go to the server,
// with the key's signature over the token.
//
// Afterwards every call is signed by that key: the list of waiting requests
// (polled while the page is visible, so approvals work without a push
// service) and each answer: the number picked among three, or "this wasn't me".
"use strict";

(function () {
  const POLL_MS = 3000;
  const DB = "portcullis-authenticator";
  const STORE = "device";
  const root = document.getElementById("companion");
  const words = JSON.parse(document.getElementById("companion-words").textContent);
  const w = (key, args) => (words[key] || key).replace(/\{(\w+)\}/g, (_, k) => (args && k in args ? String(args[k]) : ""));
  const $ = (sel) => root.querySelector(sel);

  function show(sel, on) {
    $(sel).hidden = !on;
  }

  function tell(kind, text) {
    const box = $(kind === "error" ? "[data-error]" : "[data-notice]");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function b64url(buf) {
    let bin = "";
    for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromB64url(s) {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(b64 + "===".slice((b64.length + 3) % 4)), (c) => c.charCodeAt(0));
  }

  function db() {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }

  async function load() {
    const d = await db();
    return new Promise((resolve, reject) => {
      const get = d.transaction(STORE).objectStore(STORE).get("self");
      get.onsuccess = () => resolve(get.result || null);
      get.onerror = () => reject(get.error);
    });
  }

  async function save(device) {
    const d = await db();
    return new Promise((resolve, reject) => {
      const tx = d.transaction(STORE, "readwrite");
      tx.objectStore(STORE).put(device, "self");
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  }

  async function sign(device, text) {
    const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, device.privateKey, new TextEncoder().encode(text));
    return b64url(sig); // r || s, 64 bytes: what the server verifies
  }

  async function call(path, body) {
    const res = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = new Error(json.error || w("failed"));
      e.status = res.status;
      throw e;
    }
    return json;
  }

  // A push subscription if notifications are allowed and a push service answers
  // (within ten seconds); null otherwise.
  function subscribe() {
    const late = new Promise((resolve) => setTimeout(() => resolve(null), 10000));
    return Promise.race([trySubscribe(), late]);
  }

  async function trySubscribe() {
    try {
      if (!("serviceWorker" in navigator) || !("PushManager" in window)) return null;
      const registration = await navigator.serviceWorker.register("/authenticator/sw.js", { scope: "/authenticator" });
      if ((await Notification.requestPermission()) !== "granted") return null;
      await navigator.serviceWorker.ready;
      const key = fromB64url(root.dataset.vapidKey);
      const sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      const json = sub.toJSON();
      return { endpoint: json.endpoint, p256dh: json.keys.p256dh, auth: json.keys.auth };
    } catch (_) {
      return null; // no push service reachable, or refused: the page polls instead
    }
  }

  async function pair(token) {
    tell("error", "");
    const name = $("#device-name").value.trim();
    const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const publicKey = b64url(await crypto.subtle.exportKey("raw", keys.publicKey));
    const device = { privateKey: keys.privateKey, publicKey, name };
    const subscription = await subscribe();
    const signature = await sign(device, `portcullis-push-pair-v1\n${token}\n${location.origin}`);
    const paired = await call("/authenticator/pair", { token, public_key: publicKey, subscription, name, signature });
    device.name = paired.name;
    device.push = !!subscription;
    await save(device);
    history.replaceState(null, "", location.pathname);
    tell("notice", w("paired"));
    start(device);
  }

  function render(device, requests) {
    const list = $("[data-requests]");
    const template = document.getElementById("request-template");
    show("[data-no-requests]", requests.length === 0);
    const shown = new Set(requests.map((r) => r.id));
    for (const li of [...list.children]) if (!shown.has(li.dataset.request)) li.remove();
    for (const r of requests) {
      if (list.querySelector(`[data-request="${CSS.escape(r.id)}"]`)) continue;
      const li = template.content.firstElementChild.cloneNode(true);
      li.dataset.request = r.id;
      for (const field of ["application", "browser", "place", "time"]) li.querySelector(`[data-field=${field}]`).textContent = r[field];
      const choices = li.querySelector("[data-choices]");
      for (const n of r.choices) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "push-choice";
        b.textContent = String(n);
        b.setAttribute("aria-label", w("approve_with", { number: n }));
        b.setAttribute("data-testid", "push-choice");
        b.addEventListener("click", () => answer(device, r, li, "approve", n));
        choices.appendChild(b);
      }
      li.querySelector("[data-deny]").addEventListener("click", () => answer(device, r, li, "deny", null));
      list.appendChild(li);
    }
  }

  async function answer(device, r, li, decision, number) {
    tell("error", "");
    tell("notice", "");
    for (const b of li.querySelectorAll("button")) b.disabled = true;
    const text = `portcullis-push-v1\n${r.id}\n${number === null ? "" : number}\n${decision}\n${location.origin}`;
    try {
      const signature = await sign(device, text);
      const res = await call("/authenticator/answer", { public_key: device.publicKey, request: r.id, decision, number, signature });
      li.remove();
      tell("notice", w(res.state === "approved" ? "approved" : "denied"));
    } catch (err) {
      li.remove();
      tell("error", err.message);
    }
    show("[data-no-requests]", !$("[data-requests]").children.length);
  }

  async function poll(device) {
    if (document.visibilityState !== "visible") return;
    const at = Math.floor(Date.now() / 1000);
    try {
      const signature = await sign(device, `portcullis-push-list-v1\n${at}\n${location.origin}`);
      const json = await call("/authenticator/requests", { public_key: device.publicKey, at, signature });
      render(device, json.requests);
    } catch (err) {
      if (err.status === 401) {
        tell("error", w("not_recognised"));
      }
    }
  }

  function start(device) {
    show("[data-pairing]", false);
    show("[data-unpaired]", false);
    show("[data-paired]", true);
    show("[data-no-push]", !device.push);
    $("[data-device-name]").textContent = device.name;
    poll(device);
    setInterval(() => poll(device), POLL_MS);
    document.addEventListener("visibilitychange", () => poll(device));
  }

  document.addEventListener("DOMContentLoaded", async function () {
    if (!window.crypto || !crypto.subtle || !window.indexedDB) {
      tell("error", w("unsupported"));
      return;
    }
    const token = new URLSearchParams(location.hash.slice(1)).get("pair");
    const device = await load().catch(() => null);
    if (token) {
      show("[data-pairing]", true);
      // One phone holds one pairing: a second link replaces the first (say so before it does).
      if (device) tell("notice", w("replaces", { name: device.name }));
      $("[data-pair-form]").addEventListener("submit", (event) => {
        event.preventDefault();
        const button = event.target.querySelector("button");
        button.disabled = true;
        pair(token).catch((err) => {
          button.disabled = false;
          tell("error", err.message || w("pair_failed"));
        });
      });
      return;
    }
    if (device) start(device);
    else show("[data-unpaired]", true);
  });
})();
