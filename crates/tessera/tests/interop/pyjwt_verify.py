"""Verifies tessera access tokens with PyJWT, fetching keys through the JWKS.

Usage: pyjwt_verify.py ISSUER AUDIENCE ALG < token
Prints the verified claims as JSON, or exits non-zero with PyJWT's refusal.
Written against PyJWT's documented API only: what any Python resource service does.
"""
import json
import sys

import jwt

issuer, audience, algorithm = sys.argv[1:4]
token = sys.stdin.read().strip()

metadata_url = issuer + "/.well-known/oauth-authorization-server"
import urllib.request

with urllib.request.urlopen(metadata_url) as response:
    metadata = json.load(response)
assert metadata["issuer"] == issuer, metadata

header = jwt.get_unverified_header(token)
if header.get("typ") != "at+jwt":
    sys.exit(f"typ is {header.get('typ')!r}, not at+jwt")
key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    key,
    algorithms=[algorithm],
    audience=audience,
    issuer=issuer,
    options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
)
print(json.dumps(claims))
