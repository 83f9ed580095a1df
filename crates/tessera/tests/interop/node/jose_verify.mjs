// Verifies a tessera access token with Node's `jose`, fetching keys through the
// JWKS named by the issuer's metadata (RFC 8414): what any Node resource service does.
//
// Usage: node jose_verify.mjs ISSUER AUDIENCE ALG < token
// Prints the verified payload as JSON, or exits non-zero with jose's error code
// (for example ERR_JWS_SIGNATURE_VERIFICATION_FAILED) on stderr.
// Needs `npm ci` in this directory (scripts/test runs it).
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, audience, algorithm] = process.argv.slice(2);
if (!issuer || !audience || !algorithm) {
  console.error('usage: node jose_verify.mjs ISSUER AUDIENCE ALG < token');
  process.exit(2);
}
const token = readFileSync(0, 'utf8').trim();

const response = await fetch(`${issuer}/.well-known/oauth-authorization-server`);
if (!response.ok) {
  console.error(`metadata: HTTP ${response.status}`);
  process.exit(3);
}
const metadata = await response.json();
if (metadata.issuer !== issuer) {
  console.error(`metadata names issuer ${metadata.issuer}, not ${issuer}`);
  process.exit(3);
}

const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: 'at+jwt',
    algorithms: [algorithm],
    requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub', 'jti'],
  });
  if (protectedHeader.alg !== algorithm) {
    throw new Error(`alg ${protectedHeader.alg}`);
  }
  console.log(JSON.stringify(payload));
} catch (error) {
  console.error(`${error.code ?? error.name}: ${error.message}`);
  process.exit(1);
}
