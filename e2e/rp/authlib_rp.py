"""A relying party written with Authlib, as a Python application would use it,
for the browser suite (e2e/tests/client_libraries.test.mjs).

Authlib does the protocol: the authorization URL with PKCE, the code
exchange, refresh, and the ID token's validation (signature against the
provider's JWKS, iss, aud, exp, nonce, at_hash, and c_hash for the hybrid
flow). This file only routes the browser and answers what Authlib validated
as JSON.

    python authlib_rp.py PORT ISSUER CLIENT_ID CLIENT_SECRET
"""

import html
import json
import secrets
import sys
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import requests

# authlib.jose warns that joserfc will replace it in 2.0; the OIDC claim
# classes this file uses are still built on it in 1.x.
warnings.filterwarnings("ignore", message="authlib.jose module is deprecated")
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # noqa: E402
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oidc.core import CodeIDToken, HybridIDToken  # noqa: E402

PORT, ISSUER, CLIENT_ID, CLIENT_SECRET = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
BASE = f"http://127.0.0.1:{PORT}"
METADATA = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=10).json()
assert METADATA["issuer"] == ISSUER, "discovery names another issuer"

pending = {}  # state -> what the callback checks
last = {}  # the tokens of the last sign-in


def session(**kwargs):
    return OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        scope="openid email offline_access",
        redirect_uri=f"{BASE}/cb",
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        **kwargs,
    )


def validated(id_token, claims_cls, params):
    """The ID token's claims, after Authlib checked them (raises otherwise)."""
    keys = JsonWebKey.import_key_set(requests.get(METADATA["jwks_uri"], timeout=10).json())
    options = {"iss": {"essential": True, "value": ISSUER}, "aud": {"essential": True, "value": CLIENT_ID}}
    claims = jwt.decode(id_token, keys, claims_cls=claims_cls, claims_options=options, claims_params={"client_id": CLIENT_ID, **params})
    claims.validate(leeway=60)
    return dict(claims), claims.header["alg"]


def exchange(code, verifier, nonce):
    token = session().fetch_token(METADATA["token_endpoint"], grant_type="authorization_code", code=code, code_verifier=verifier)
    claims, alg = validated(token["id_token"], CodeIDToken, {"nonce": nonce, "access_token": token["access_token"]})
    last.update(token)
    return token, claims, alg


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=None, location=None):
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        # A page the test reads: the JSON inside <pre id="result">.
        data = f'<!doctype html><html lang="en"><title>Authlib RP</title><pre id="result">{html.escape(json.dumps(body or {}))}</pre>'.encode()
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == "/start":
                verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
                extra = {"nonce": nonce, "code_verifier": verifier}
                if query.get("acr"):
                    extra["acr_values"] = query["acr"]
                hybrid = query.get("hybrid") == "1"
                if hybrid:
                    # Authlib adds PKCE by itself only to response_type=code.
                    challenge = create_s256_code_challenge(verifier)
                    extra.update(response_type="code id_token", response_mode="form_post", code_challenge=challenge, code_challenge_method="S256")
                auth_url, state = session().create_authorization_url(METADATA["authorization_endpoint"], **extra)
                pending[state] = {"nonce": nonce, "verifier": verifier, "hybrid": hybrid}
                return self.answer(302, location=auth_url)
            if url.path == "/cb":
                expected = pending.pop(query.get("state", ""), None)
                if expected is None or expected["hybrid"]:
                    return self.answer(400, {"error": "state"})
                if query.get("iss") != ISSUER:
                    return self.answer(400, {"error": "iss (RFC 9207)"})
                _, claims, alg = exchange(query["code"], expected["verifier"], expected["nonce"])
                return self.answer(200, {"library": "authlib", "flow": "code", "alg": alg, "claims": claims})
            if url.path == "/refresh":
                before = dict(last)
                token = session().refresh_token(METADATA["token_endpoint"], refresh_token=before["refresh_token"])
                last.update(token)
                info = requests.get(METADATA["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)
                rotated = token["refresh_token"] != before["refresh_token"]
                return self.answer(200, {"rotated": rotated, "new_access_token": token["access_token"] != before["access_token"], "userinfo": info.json()})
            if url.path == "/logout":
                params = {"id_token_hint": last["id_token"], "post_logout_redirect_uri": f"{BASE}/bye", "state": "bye-state"}
                return self.answer(302, location=f"{METADATA['end_session_endpoint']}?{urlencode(params)}")
            if url.path == "/bye":
                return self.answer(200, {"signed_out": query.get("state") == "bye-state"})
            return self.answer(404, {"error": "not found"})
        except Exception as e:  # the test reads what failed
            return self.answer(500, {"error": repr(e)})

    def do_POST(self):
        # response_mode=form_post: the hybrid response, posted by the provider's page.
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        try:
            expected = pending.pop(form.get("state", ""), None)
            if urlparse(self.path).path != "/cb" or expected is None or not expected["hybrid"]:
                return self.answer(400, {"error": "state"})
            # The front-channel ID token: c_hash binds it to this code.
            front, alg = validated(form["id_token"], HybridIDToken, {"nonce": expected["nonce"], "code": form["code"]})
            _, claims, _ = exchange(form["code"], expected["verifier"], expected["nonce"])
            if front["sub"] != claims["sub"]:
                return self.answer(400, {"error": "the two ID tokens name different users"})
            return self.answer(200, {"library": "authlib", "flow": "hybrid", "alg": alg, "claims": claims})
        except Exception as e:
            return self.answer(500, {"error": repr(e)})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print("authlib relying party ready", flush=True)
    server.serve_forever()
