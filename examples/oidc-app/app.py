"""A small web app that signs its users in with tessera (OpenID Connect).

    TESSERA_ISSUER=http://127.0.0.1:7480 CLIENT_ID=… CLIENT_SECRET=… \
        python3 examples/oidc-app/app.py [PORT]

What it shows, in the fewest lines a real app needs:
- "Sign in with tessera": the authorization code flow with PKCE, `state` and
  `nonce`, through Authlib's OAuth2Session; the ID token validated with Authlib's
  OpenID Connect rules (signature by tessera's JWKS, iss, aud, exp, nonce, at_hash).
- A signed-in page with the user's name from the ID token.
- "Sign out everywhere": RP-initiated logout at tessera's end_session_endpoint with
  the ID token as hint, which ends the tessera session and so every app's.
- A back-channel logout endpoint (`POST /backchannel`): tessera posts a logout token
  there when the user's tessera session ends for any reason (signed out in another
  app, kicked by an admin, disabled); the app checks it and ends its own session
  for that `sid` at once. `GET /events` lists what it received (for the tests).

Register it with tessera first (README, "Sign in with tessera"):

    tessera client add example-app --grant authorization_code,refresh_token \
        --redirect-uri http://127.0.0.1:8000/callback \
        --post-logout-redirect-uri http://127.0.0.1:8000/signed-out \
        --backchannel-logout-uri http://127.0.0.1:8000/backchannel \
        --scope "openid profile email"

Needs Python 3 with Authlib and requests (`python3 -m pip install authlib requests`).
Sessions live in memory; a real app keeps them in its store.
"""
import html
import json
import os
import secrets
import sys
import threading
import warnings
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.oidc.core import CodeIDToken

ISSUER = os.environ["TESSERA_ISSUER"].rstrip("/")
CLIENT_ID = os.environ["CLIENT_ID"]
CLIENT_SECRET = os.environ["CLIENT_SECRET"]
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
BASE = f"http://127.0.0.1:{PORT}"
COOKIE = "example_app_session"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

discovery = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=10).json()
# Only the algorithms tessera signs ID and logout tokens with.
jwt = JsonWebToken(["RS256", "ES256", "EdDSA"])

lock = threading.Lock()
pending = {}  # login attempt id -> state, nonce, PKCE verifier
sessions = {}  # app session id -> claims, ID token
received = []  # back-channel logouts: {"sid", "sub"}


def keys():
    return JsonWebKey.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json())


def oauth():
    return OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        scope="openid profile email",
        redirect_uri=f"{BASE}/callback",
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        default_timeout=10,
    )


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f8fafc;color:#0f172a}}
header{{background:#0f172a;color:#fff;padding:1rem 2rem;font-weight:600}}
main{{max-width:36rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:.75rem;
box-shadow:0 1px 3px rgba(0,0,0,.1)}}a.button,button{{display:inline-block;padding:.6rem 1rem;
background:#2563eb;color:#fff;border:0;border-radius:.45rem;font:inherit;font-weight:600;
text-decoration:none;cursor:pointer}}dt{{font-weight:600}}dd{{margin:0 0 .5rem}}</style>
</head><body><header>Example app</header><main>{body}</main></body></html>"""


class App(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_page(self, title, body, status=200, cookie=None):
        data = PAGE.format(title=title, body=body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        if cookie is not None:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, to, cookie=None):
        self.send_response(303)
        self.send_header("Location", to)
        if cookie is not None:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()

    def cookie(self):
        jar = SimpleCookie(self.headers.get("Cookie", ""))
        return jar[COOKIE].value if COOKIE in jar else None

    def session(self):
        with lock:
            return sessions.get(self.cookie())

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/":
            return self.home()
        if url.path == "/login":
            return self.login()
        if url.path == "/callback":
            return self.callback(parse_qs(url.query))
        if url.path == "/signed-out":
            return self.send_page(
                "Signed out",
                '<h1>Signed out</h1><p>You are signed out of tessera and of every app.</p>'
                '<p><a class="button" href="/">Back to the app</a></p>',
                cookie=f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax",
            )
        if url.path == "/events":
            with lock:
                body = json.dumps({"backchannel_logouts": received}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            return self.wfile.write(body)
        self.send_page("Not found", "<h1>Not found</h1>", status=404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        path = urlparse(self.path).path
        if path == "/logout":
            return self.logout()
        if path == "/backchannel":
            return self.backchannel(form.get("logout_token", [""])[0])
        self.send_page("Not found", "<h1>Not found</h1>", status=404)

    def home(self):
        session = self.session()
        if session is None:
            return self.send_page(
                "Example app",
                "<h1>Welcome</h1><p>You are not signed in.</p>"
                '<p><a class="button" href="/login">Sign in with tessera</a></p>',
            )
        claims = session["claims"]
        rows = "".join(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(claims.get(k)))}</dd>"
            for k in ("preferred_username", "name", "email", "sub", "sid")
            if claims.get(k) is not None
        )
        name = html.escape(claims.get("name") or claims.get("preferred_username") or "")
        self.send_page(
            "Example app",
            f'<h1>Hello, <span id="name">{name}</span></h1><p>You are signed in with tessera.</p>'
            f"<dl>{rows}</dl>"
            '<form method="post" action="/logout"><button type="submit">Sign out everywhere</button></form>',
        )

    def login(self):
        attempt, verifier, nonce = generate_token(24), generate_token(64), generate_token(24)
        url, state = oauth().create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        with lock:
            pending[attempt] = {"state": state, "nonce": nonce, "verifier": verifier}
        self.redirect(url, cookie=f"{COOKIE}_login={attempt}; Path=/; HttpOnly; SameSite=Lax")

    def callback(self, query):
        jar = SimpleCookie(self.headers.get("Cookie", ""))
        attempt = jar[f"{COOKIE}_login"].value if f"{COOKIE}_login" in jar else None
        with lock:
            started = pending.pop(attempt, None)
        if "error" in query:
            return self.send_page("Not signed in", "<h1>Not signed in</h1><p>"
                                  + html.escape(query.get("error_description", query["error"])[0])
                                  + '</p><p><a class="button" href="/">Back</a></p>', status=400)
        if started is None or query.get("state", [None])[0] != started["state"]:
            return self.send_page("Not signed in", "<h1>That sign-in was not started here</h1>", status=400)
        if query.get("iss", [None])[0] != ISSUER:  # RFC 9207: from the issuer we asked
            return self.send_page("Not signed in", "<h1>Wrong issuer</h1>", status=400)
        client = oauth()
        token = client.fetch_token(
            discovery["token_endpoint"],
            authorization_response=f"{BASE}{self.path}",
            code_verifier=started["verifier"],
            state=started["state"],
        )
        claims = jwt.decode(
            token["id_token"],
            key=keys(),
            claims_cls=CodeIDToken,
            claims_options={"iss": {"value": ISSUER}},
            claims_params={
                "nonce": started["nonce"],
                "client_id": CLIENT_ID,
                "access_token": token["access_token"],
            },
        )
        claims.validate()
        session_id = secrets.token_urlsafe(24)
        with lock:
            sessions[session_id] = {"claims": dict(claims), "id_token": token["id_token"]}
        self.redirect("/", cookie=f"{COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax")

    def logout(self):
        session = self.session()
        if session is None:
            return self.redirect("/")
        query = urlencode({
            "id_token_hint": session["id_token"],
            "post_logout_redirect_uri": f"{BASE}/signed-out",
        })
        self.redirect(f"{discovery['end_session_endpoint']}?{query}")

    def backchannel(self, token):
        """OpenID Connect Back-Channel Logout 1.0 §2.6: validate, then end the sessions."""
        try:
            claims = jwt.decode(token, key=keys(), claims_options={
                "iss": {"essential": True, "value": ISSUER},
                "aud": {"essential": True, "value": CLIENT_ID},
                "iat": {"essential": True},
            })
            claims.validate(leeway=60)
            assert claims.header.get("typ") == "logout+jwt", "not a logout token"
            assert LOGOUT_EVENT in claims.get("events", {}), "no logout event"
            assert "nonce" not in claims, "a logout token has no nonce"
            sid = claims["sid"]
        except Exception as error:  # every failure is a 400, as §2.8 says
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            return self.wfile.write(json.dumps({"error": "invalid_request",
                                                "error_description": str(error)}).encode())
        with lock:
            for key in [k for k, s in sessions.items() if s["claims"].get("sid") == sid]:
                del sessions[key]
            received.append({"sid": sid, "sub": claims["sub"]})
        self.send_response(200)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), App)
    print(f"example app on {BASE}", flush=True)
    server.serve_forever()
