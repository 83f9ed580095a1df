// panva's oidc-provider, the reference OpenID Connect provider (Node), set up like
// the tessera side of scripts/bench-oidc: one confidential client, PKCE, ES256 ID
// tokens, refresh tokens, the profile and email claims; its in-memory store and its
// development sign-in pages (any username), which the script drives once.
//
//   node server.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const { privateKey: rsa } = await generateKeyPair('RS256', { extractable: true });
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [await exportJWK(privateKey), { ...(await exportJWK(rsa)), alg: 'RS256' }] },
  pkce: { required: () => true },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'] },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({
      sub: id, name: 'Bench User', preferred_username: id, email: 'bench@example.org', email_verified: true,
    }),
  }),
  // As tessera gives a client allowed the refresh_token grant a refresh token.
  issueRefreshToken: () => true,
  ttl: { AuthorizationCode: 600, AccessToken: 3600, IdToken: 3600 },
  cookies: { keys: ['tessera-bench-cookie-key'] },
  features: { devInteractions: { enabled: true } },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`oidc-provider on http://127.0.0.1:${port}`));
