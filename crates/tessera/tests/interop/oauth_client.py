"""Authlib, a third-party OAuth 2 client, performs the password and refresh grants.

Usage: oauth_client.py ISSUER CLIENT_ID USERNAME SCOPE, with the client secret and
the user's password on the first two lines of stdin.

A confidential client authenticating with client_secret_basic, written against
Authlib's documented OAuth2Session API only. Finds the endpoints in the metadata
(RFC 8414), then: the password grant; introspection of that access token; a refresh;
introspection of the new access token; the first refresh token again (a reuse,
which the server must refuse); the newest refresh token (dead with its family).
Prints what it saw as one JSON object; exits non-zero if a step it expects to work
fails.
"""
import json
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError

issuer, client_id, username, scope = sys.argv[1:5]
client_secret, password = sys.stdin.read().split("\n")[:2]

metadata = requests.get(issuer + "/.well-known/oauth-authorization-server", timeout=10)
metadata.raise_for_status()
metadata = metadata.json()
assert metadata["issuer"] == issuer, metadata
token_endpoint = metadata["token_endpoint"]
introspection_endpoint = metadata["introspection_endpoint"]

client = OAuth2Session(
    client_id,
    client_secret,
    token_endpoint_auth_method="client_secret_basic",
    scope=scope,
    default_timeout=10,
)


def introspect(token):
    response = client.introspect_token(introspection_endpoint, token=token)
    response.raise_for_status()
    return response.json()


def refused(refresh_token):
    """The OAuth error code a refresh with `refresh_token` is refused with."""
    try:
        client.refresh_token(token_endpoint, refresh_token=refresh_token)
    except OAuthError as error:
        return error.error
    return None


first = dict(
    client.fetch_token(
        token_endpoint, username=username, password=password, grant_type="password"
    )
)
first_introspection = introspect(first["access_token"])
second = dict(client.refresh_token(token_endpoint, refresh_token=first["refresh_token"]))
second_introspection = introspect(second["access_token"])
print(
    json.dumps(
        {
            "metadata": metadata,
            "first": first,
            "first_introspection": first_introspection,
            "second": second,
            "second_introspection": second_introspection,
            "reuse": refused(first["refresh_token"]),
            "after_reuse": refused(second["refresh_token"]),
        }
    )
)
