#!/usr/bin/env python3
"""A second internal service, in Python: it trusts only what the gateway forwards,
and verifies the JWT itself with PyJWT through tessera's JWKS (no call to tessera
per request: keys are fetched once and cached by PyJWKClient).

    python3 reports.py --issuer http://127.0.0.1:7480 --audience reports --port 9001
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt  # PyJWT

parser = argparse.ArgumentParser()
parser.add_argument("--issuer", required=True)
parser.add_argument("--audience", required=True)
parser.add_argument("--port", type=int, default=9001)
args = parser.parse_args()
keys = jwt.PyJWKClient(f"{args.issuer}/.well-known/jwks.json", cache_keys=True)


class Reports(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return self.answer(401, {"error": "invalid_request", "error_description": "no token"})
        try:
            key = keys.get_signing_key_from_jwt(token).key
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA", "ES256", "RS256"],
                audience=args.audience,
                issuer=args.issuer,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as error:
            return self.answer(401, {"error": "invalid_token", "error_description": str(error)})
        self.answer(
            200,
            {
                "service": "reports (Python, PyJWT)",
                "user": claims["sub"],
                "session": claims.get("sid"),
                "saw_cookie": "Cookie" in self.headers,
                "request_id": self.headers.get("X-Request-Id"),
            },
        )

    def log_message(self, *_):
        pass


ThreadingHTTPServer(("127.0.0.1", args.port), Reports).serve_forever()
