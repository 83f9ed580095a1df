// A DPoP client made with panva's oauth4webapi, as a third party would write it:
// discovery (RFC 8414), a client-credentials grant with a DPoP proof (RFC 9449),
// retried once on `use_dpop_nonce`, then the bound token used on a resource
// service, the library signing a fresh proof for each request.
//
// Usage: node dpop_client.mjs ISSUER CLIENT_ID CLIENT_SECRET SCOPE RESOURCE_URL
// Prints one JSON object: the token type, the key's thumbprint the token must be
// bound to, the token itself, and the resource's status and body for a first and
// a second call. Needs `npm ci` in this directory (scripts/test runs it).
import { calculateJwkThumbprint } from 'jose';
import * as oauth from 'oauth4webapi';

const [issuerUrl, clientId, clientSecret, scope, resourceUrl] = process.argv.slice(2);
if (!resourceUrl) {
  console.error('usage: node dpop_client.mjs ISSUER CLIENT_ID CLIENT_SECRET SCOPE RESOURCE_URL');
  process.exit(2);
}
// The tests run on loopback over plain HTTP; a real deployment uses HTTPS.
const insecure = { [oauth.allowInsecureRequests]: true };

const issuer = new URL(issuerUrl);
const as = await oauth
  .discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure })
  .then((response) => oauth.processDiscoveryResponse(issuer, response));
if (!as.dpop_signing_alg_values_supported?.includes('ES256')) {
  throw new Error('the metadata does not offer ES256 DPoP proofs');
}
const client = { client_id: clientId };
const clientAuth = oauth.ClientSecretBasic(clientSecret);
const keyPair = await oauth.generateKeyPair('ES256');
const DPoP = oauth.DPoP(client, keyPair);

async function grant() {
  const response = await oauth.clientCredentialsGrantRequest(
    as,
    client,
    clientAuth,
    new URLSearchParams({ scope }),
    { DPoP, ...insecure },
  );
  return oauth.processClientCredentialsResponse(as, client, response);
}

let tokens;
let nonceRetried = false;
try {
  tokens = await grant();
} catch (error) {
  if (!oauth.isDPoPNonceError(error)) throw error;
  // The handle kept the nonce the server sent: the next proof carries it.
  nonceRetried = true;
  tokens = await grant();
}

async function call() {
  const response = await oauth.protectedResourceRequest(
    tokens.access_token,
    'GET',
    new URL(resourceUrl),
    new Headers(),
    null,
    { DPoP, ...insecure },
  );
  return { status: response.status, body: await response.text() };
}

const publicJwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
console.log(
  JSON.stringify({
    token_type: tokens.token_type,
    // jose's RFC 7638 thumbprint: what `cnf.jkt` must name.
    jkt: await calculateJwkThumbprint(publicJwk, 'sha256'),
    access_token: tokens.access_token,
    nonce_retried: nonceRetried,
    first: await call(),
    second: await call(),
  }),
);
