// Security keys and passkeys: the only part of Portcullis that needs JavaScript.
//
// A button with data-webauthn="create" or "get" sits in a form. On click we
// POST the form's CSRF token (and fields) to the button's data-options URL,
// receive { ceremony, options }, ask the browser's authenticator, put the
// JSON answer into the form's "ceremony" and "credential" fields and submit
// the form normally, so the server answers with an ordinary page.
// On the sign-in page, passkeys are also offered in the Email field's
// autofill (conditional mediation).
"use strict";

(function () {
  const supported = typeof window.PublicKeyCredential === "function" && !!navigator.credentials;

  function b64urlToBytes(s) {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  function bytesToB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeCreation(o) {
    const pk = Object.assign({}, o.publicKey);
    pk.challenge = b64urlToBytes(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: b64urlToBytes(pk.user.id) });
    pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => Object.assign({}, c, { id: b64urlToBytes(c.id) }));
    return pk;
  }

  function decodeRequest(o) {
    const pk = Object.assign({}, o.publicKey);
    pk.challenge = b64urlToBytes(pk.challenge);
    pk.allowCredentials = (pk.allowCredentials || []).map((c) => Object.assign({}, c, { id: b64urlToBytes(c.id) }));
    return pk;
  }

  function encodeCredential(cred) {
    const r = cred.response;
    const response = { clientDataJSON: bytesToB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = bytesToB64url(r.attestationObject);
      if (typeof r.getTransports === "function") response.transports = r.getTransports();
    } else {
      response.authenticatorData = bytesToB64url(r.authenticatorData);
      response.signature = bytesToB64url(r.signature);
      response.userHandle = r.userHandle ? bytesToB64url(r.userHandle) : null;
    }
    return JSON.stringify({
      id: cred.id,
      rawId: bytesToB64url(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults(),
      response: response,
    });
  }

  // The page's language: the words come from <script id="webauthn-words"> (webauthn_words.html).
  const words = (() => {
    try {
      return JSON.parse(document.getElementById("webauthn-words").textContent);
    } catch (e) {
      return {};
    }
  })();
  const w = (key) => words[key] || key;

  function say(form, text) {
    const box = form.querySelector("[data-webauthn-status]") || document.querySelector("[data-webauthn-status]");
    if (box) {
      box.textContent = text;
      box.hidden = !text;
    }
  }

  function explain(err, creating) {
    switch (err && err.name) {
      case "NotAllowedError":
        return w("cancelled");
      case "InvalidStateError":
        return creating ? w("already_registered") : w("not_registered");
      case "SecurityError":
        return w("security_error");
      case "NotSupportedError":
        return w("not_supported");
      default:
        return (err && err.message) || w("failed");
    }
  }

  async function fetchOptions(url, form) {
    const body = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (k !== "credential" && k !== "ceremony") body.append(k, v);
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: body,
      credentials: "same-origin",
    });
    const json = await res.json().catch(() => ({ error: w("bad_answer") }));
    if (!res.ok || json.error) throw new Error(json.error || w("refused"));
    return json;
  }

  function submitAnswer(form, ceremony, cred) {
    form.querySelector("input[name=ceremony]").value = ceremony;
    form.querySelector("input[name=credential]").value = encodeCredential(cred);
    form.submit();
  }

  let conditional = null;

  async function run(button) {
    const form = button.form;
    const creating = button.dataset.webauthn === "create";
    say(form, "");
    if (!supported) {
      say(form, w("unsupported_browser"));
      return;
    }
    if (conditional) conditional.abort();
    button.disabled = true;
    try {
      const { ceremony, options } = await fetchOptions(button.dataset.options, form);
      say(form, creating ? w("prompt_create") : w("prompt_get"));
      const cred = creating
        ? await navigator.credentials.create({ publicKey: decodeCreation(options) })
        : await navigator.credentials.get({ publicKey: decodeRequest(options) });
      if (!cred) throw new Error(w("no_credential"));
      submitAnswer(form, ceremony, cred);
    } catch (err) {
      say(form, explain(err, creating));
      button.disabled = false;
    }
  }

  async function offerAutofill(form) {
    if (!supported || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    conditional = new AbortController();
    try {
      const { ceremony, options } = await fetchOptions(form.dataset.autofillOptions, form);
      const cred = await navigator.credentials.get({ publicKey: decodeRequest(options), mediation: "conditional", signal: conditional.signal });
      if (cred) submitAnswer(form, ceremony, cred);
    } catch (_) {
      // Aborted (the user pressed the button) or dismissed: nothing to say.
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    for (const el of document.querySelectorAll("[data-webauthn-js]")) el.hidden = false;
    for (const button of document.querySelectorAll("button[data-webauthn]")) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        run(button);
      });
    }
    const autofill = document.querySelector("form[data-autofill-options]");
    if (autofill) offerAutofill(autofill);
  });
})();
