// A relying party written with Node's openid-client (v6), as a Node
// application would use it, for the browser suite
// (e2e/tests/client_libraries.test.mjs). The same routes as the Python one
// (e2e/rp/authlib_rp.py): /start[?acr=…][&hybrid=1], /cb (GET, or POST for
// form_post), /refresh, /logout, /bye; each answers what the library validated
// as JSON. openid-client checks the ID token itself: signature against the
// JWKS, iss, aud, exp, nonce, and c_hash for the hybrid flow.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import * as oidc from "openid-client";

export async function startOpenIdClientRp(port, issuer, clientId, clientSecret) {
  const base = `http://127.0.0.1:${port}`;
  const options = { execute: [oidc.allowInsecureRequests] };
  const code = await oidc.discovery(new URL(issuer), clientId, clientSecret, oidc.ClientSecretBasic(clientSecret), options);
  const hybrid = await oidc.discovery(new URL(issuer), clientId, clientSecret, oidc.ClientSecretBasic(clientSecret), options);
  oidc.useCodeIdTokenResponseType(hybrid);
  const pending = new Map();
  let last;
  let lastSubject;

  const server = createServer(async (req, res) => {
    const answer = (status, body, location) => {
      // A page the test reads: the JSON inside <pre id="result">.
      res.writeHead(status, { "content-type": "text/html; charset=utf-8", ...(location ? { location } : {}) });
      const json = JSON.stringify(body ?? {}).replace(/&/g, "&amp;").replace(/</g, "&lt;");
      res.end(`<!doctype html><html lang="en"><title>openid-client RP</title><pre id="result">${json}</pre>`);
    };
    const url = new URL(req.url, base);
    try {
      if (url.pathname === "/start") {
        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        const nonce = randomBytes(16).toString("base64url");
        const isHybrid = url.searchParams.get("hybrid") === "1";
        const params = {
          redirect_uri: `${base}/cb`,
          scope: "openid email offline_access",
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: "S256",
          state,
          nonce,
        };
        if (url.searchParams.get("acr")) params.acr_values = url.searchParams.get("acr");
        if (isHybrid) params.response_mode = "form_post";
        pending.set(state, { verifier, nonce, isHybrid });
        return answer(302, {}, oidc.buildAuthorizationUrl(isHybrid ? hybrid : code, params).href);
      }
      if (url.pathname === "/cb") {
        let current = url;
        let state = url.searchParams.get("state");
        if (req.method === "POST") {
          let body = "";
          for await (const chunk of req) body += chunk;
          state = new URLSearchParams(body).get("state");
          // form_post: the library reads the posted parameters from the Request.
          current = new Request(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
        }
        const expected = pending.get(state);
        pending.delete(state);
        if (!expected || expected.isHybrid !== (req.method === "POST")) return answer(400, { error: "state" });
        const tokens = await oidc.authorizationCodeGrant(expected.isHybrid ? hybrid : code, current, {
          pkceCodeVerifier: expected.verifier,
          expectedState: state,
          expectedNonce: expected.nonce,
          idTokenExpected: true,
        });
        last = tokens;
        lastSubject = tokens.claims().sub;
        const header = JSON.parse(Buffer.from(tokens.id_token.split(".")[0], "base64url"));
        return answer(200, { library: "openid-client", flow: expected.isHybrid ? "hybrid" : "code", alg: header.alg, claims: tokens.claims() });
      }
      if (url.pathname === "/refresh") {
        const before = last;
        const tokens = await oidc.refreshTokenGrant(code, before.refresh_token);
        last = { ...before, ...tokens, id_token: tokens.id_token ?? before.id_token };
        const userinfo = await oidc.fetchUserInfo(code, tokens.access_token, lastSubject);
        return answer(200, {
          rotated: tokens.refresh_token !== before.refresh_token,
          new_access_token: tokens.access_token !== before.access_token,
          userinfo,
        });
      }
      if (url.pathname === "/logout") {
        const to = oidc.buildEndSessionUrl(code, { id_token_hint: last.id_token, post_logout_redirect_uri: `${base}/bye`, state: "bye-state" });
        return answer(302, {}, to.href);
      }
      if (url.pathname === "/bye") return answer(200, { signed_out: url.searchParams.get("state") === "bye-state" });
      return answer(404, { error: "not found" });
    } catch (e) {
      return answer(500, { error: String(e), cause: e.cause ? String(e.cause?.message ?? e.cause) : undefined });
    }
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { base, close: () => new Promise((r) => server.close(r)) };
}
