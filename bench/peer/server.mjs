// The peer provider for the benchmark: panva's oidc-provider (OpenID
// Certified), minimal production configuration, the same kind of client as
// Portcullis's (confidential, client_secret_basic, ES256 ID tokens), one
// account. Prints one JSON line when ready: {"issuer", "client_id",
// "client_secret", "access_token"}.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const client = {
  client_id: 'bench',
  client_secret: randomBytes(32).toString('base64url'),
  redirect_uris: ['http://127.0.0.1:9/callback'],
  grant_types: ['authorization_code', 'client_credentials'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'ES256',
};
const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [client],
  jwks: { keys: [{ ...signing, kid: 'bench-es256', alg: 'ES256', use: 'sig' }] },
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  ttl: { AccessToken: 3600, ClientCredentials: 600, Grant: 3600 },
});

// A user's access token for the userinfo measurement, as an authorization
// code exchange would have produced it.
const registered = await provider.Client.find(client.client_id);
const grant = new provider.Grant({ accountId: 'user0', clientId: client.client_id });
grant.addOIDCScope('openid');
const grantId = await grant.save();
const token = new provider.AccessToken({ accountId: 'user0', client: registered, grantId, scope: 'openid', gty: 'authorization_code' });
const accessToken = await token.save();

provider.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer, client_id: client.client_id, client_secret: client.client_secret, access_token: accessToken }));
});
