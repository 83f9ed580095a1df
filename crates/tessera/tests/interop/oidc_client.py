"""Authlib, a third-party OpenID Connect client, signs a user in with tessera.

Usage: oidc_client.py ISSUER CLIENT_ID REDIRECT_URI POST_LOGOUT_URI USERNAME, with the
client secret and the user's password on the first two lines of stdin.

The relying party is Authlib's OAuth2Session (PKCE S256, client_secret_basic) and
its OpenID Connect ID-token validation (authlib.oidc.core.CodeIDToken: signature by
the JWKS, iss, aud, exp, nonce, at_hash). The browser is played with `requests`:
it follows tessera's redirects, fills the sign-in form (`username`, `password`) and
allows on the consent page (`decision=allow`), exactly as the pages name them.
Steps: discovery; the authorization request; sign-in; consent; the code exchange;
ID-token validation; userinfo; a refresh; RP-initiated logout with the ID token as
hint; the refresh token after logout. Prints what it saw as one JSON object.
"""
import html.parser
import json
import sys
import warnings
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

issuer, client_id, redirect_uri, post_logout_uri, username = sys.argv[1:6]
client_secret, password = sys.stdin.read().split("\n")[:2]

discovery = requests.get(issuer + "/.well-known/openid-configuration", timeout=10)
discovery.raise_for_status()
discovery = discovery.json()
assert discovery["issuer"] == issuer, discovery

client = OAuth2Session(
    client_id,
    client_secret,
    token_endpoint_auth_method="client_secret_basic",
    scope="openid profile email",
    redirect_uri=redirect_uri,
    code_challenge_method="S256",
    default_timeout=10,
)
code_verifier = generate_token(64)
nonce = generate_token(20)
authorization_url, state = client.create_authorization_url(
    discovery["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
)


class Form(html.parser.HTMLParser):
    """The fields of the page's form: inputs with a value, as a browser sends them."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs.get("action")
        if tag == "input" and attrs.get("name") and attrs.get("value") is not None:
            self.fields[attrs["name"]] = attrs["value"]


def form_of(page):
    form = Form()
    form.feed(page)
    return form


class Browser(requests.Session):
    """A session that sends tessera's `Secure` cookies over plain http to loopback,
    as browsers do (127.0.0.1 is a secure context to them; to `requests` it is not).
    """

    def send(self, request, **kwargs):
        for cookie in self.cookies:
            cookie.secure = False
        request.prepare_cookies(self.cookies)
        return super().send(request, **kwargs)


browser = Browser()
origin = {"Origin": issuer}


def follow(response):
    """Follows redirects on tessera; returns the last answer and where it points."""
    while response.status_code in (302, 303) and response.headers["Location"]:
        target = urljoin(response.url, response.headers["Location"])
        if not target.startswith(issuer):
            return response, target
        response = browser.get(target, allow_redirects=False, timeout=10)
    return response, None


# The authorization request: no session, so tessera's sign-in page.
page, _ = follow(browser.get(authorization_url, allow_redirects=False, timeout=10))
assert urlparse(page.url).path == "/login", page.url
sign_in = form_of(page.text)
sign_in.fields.update({"username": username, "password": password})
answer = browser.post(
    urljoin(issuer, sign_in.action), data=sign_in.fields, headers=origin,
    allow_redirects=False, timeout=10,
)
page, back = follow(answer)
# A third-party app: the consent page, allowed.
consent_page = None
if back is None:
    consent_page = page.text
    consent = form_of(page.text)
    consent.fields["decision"] = "allow"
    answer = browser.post(
        urljoin(issuer, consent.action), data=consent.fields, headers=origin,
        allow_redirects=False, timeout=10,
    )
    page, back = follow(answer)
assert back and back.startswith(redirect_uri), (page.status_code, page.url)
callback = parse_qs(urlparse(back).query)

token = dict(
    client.fetch_token(
        discovery["token_endpoint"],
        authorization_response=back,
        code_verifier=code_verifier,
        state=state,
    )
)
jwks = requests.get(discovery["jwks_uri"], timeout=10).json()
claims = jwt.decode(
    token["id_token"],
    key=JsonWebKey.import_key_set(jwks),
    claims_cls=CodeIDToken,
    claims_options={"iss": {"value": issuer}},
    claims_params={
        "nonce": nonce,
        "client_id": client_id,
        "access_token": token["access_token"],
    },
)
claims.validate()

userinfo = client.get(discovery["userinfo_endpoint"], timeout=10)
userinfo.raise_for_status()
refreshed = dict(
    client.refresh_token(discovery["token_endpoint"], refresh_token=token["refresh_token"])
)

logout = browser.get(
    discovery["end_session_endpoint"],
    params={
        "id_token_hint": token["id_token"],
        "post_logout_redirect_uri": post_logout_uri,
        "state": "logged-out",
    },
    allow_redirects=False,
    timeout=10,
)
try:
    client.refresh_token(discovery["token_endpoint"], refresh_token=refreshed["refresh_token"])
    after_logout = None
except OAuthError as error:
    after_logout = error.error

print(
    json.dumps(
        {
            "discovery": discovery,
            "consent_asked": consent_page is not None,
            "callback": {k: v[0] for k, v in callback.items()},
            "state": state,
            "token": token,
            "id_token_claims": dict(claims),
            "userinfo": userinfo.json(),
            "refreshed": refreshed,
            "logout": {"status": logout.status_code, "location": logout.headers.get("Location")},
            "refresh_after_logout": after_logout,
        }
    )
)
