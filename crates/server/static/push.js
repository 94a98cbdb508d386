// The second step by approval on a phone (push with number matching).
//
// The button with data-push-send sits in the second-step form. On click we
// POST the form's CSRF token to its URL and receive { ceremony, options:
// { request, number } }: the request was sent to the user's phones. We show
// the number, then ask GET <url>?request=ID&wait=true where it stands (a long
// poll: the server answers when the phone does, or after 20 s, and we ask
// again); once approved, the request's id goes into the form's code field
// and the form is submitted normally, so the server finishes the sign-in
// with an ordinary page. After ten seconds without an answer we suggest
// opening the app (it lists requests itself when no push arrives).
"use strict";

(function () {
  const RETRY_MS = 2000;
  const HINT_MS = 10000;

  const words = (() => {
    try {
      return JSON.parse(document.getElementById("push-words").textContent);
    } catch (e) {
      return {};
    }
  })();
  const w = (key) => words[key] || key;

  function say(form, text) {
    const box = form.querySelector("[data-push-status]");
    box.textContent = text;
    box.hidden = !text;
  }

  async function send(url, form) {
    const body = new URLSearchParams({ csrf_token: form.querySelector("input[name=csrf_token]").value });
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: body,
      credentials: "same-origin",
    });
    const json = await res.json().catch(() => ({ error: w("failed") }));
    if (!res.ok || json.error) throw new Error(json.error || w("failed"));
    return json.options;
  }

  async function stateOf(url, request) {
    const res = await fetch(`${url}?request=${encodeURIComponent(request)}&wait=true`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const json = await res.json().catch(() => ({}));
    return res.ok ? json.state : "expired";
  }

  async function run(button) {
    const form = button.form;
    const url = button.dataset.pushSend;
    say(form, "");
    button.disabled = true;
    let options;
    try {
      options = await send(url, form);
    } catch (err) {
      say(form, err.message);
      button.disabled = false;
      return;
    }
    const waiting = form.querySelector("[data-push-waiting]");
    form.querySelector("[data-push-number]").textContent = String(options.number);
    waiting.hidden = false;
    button.hidden = true;
    const hint = setTimeout(() => (form.querySelector("[data-push-hint]").hidden = false), HINT_MS);
    const stop = (message) => {
      clearTimeout(hint);
      waiting.hidden = true;
      button.hidden = false;
      button.disabled = false;
      say(form, message);
    };
    for (;;) {
      const asked = Date.now();
      let state;
      try {
        state = await stateOf(url, options.request);
      } catch (_) {
        await new Promise((r) => setTimeout(r, RETRY_MS)); // a network blip: ask again soon
        continue;
      }
      if (state === "waiting") {
        // A server that does not hold the poll answers at once: never ask faster than every two seconds.
        await new Promise((r) => setTimeout(r, Math.max(0, RETRY_MS - (Date.now() - asked))));
        continue;
      }
      if (state === "approved") {
        clearTimeout(hint);
        form.querySelector("input[name=code]").value = options.request;
        form.submit();
        return;
      }
      stop(w(state === "denied" || state === "wrong_number" ? state : "expired"));
      return;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    for (const button of document.querySelectorAll("button[data-push-send]")) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        run(button);
      });
    }
  });
})();
