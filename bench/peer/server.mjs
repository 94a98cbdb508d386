// The peer provider for the benchmark: panva's oidc-provider (OpenID
// Certified), minimal production configuration, the same kind of clients as
// Portcullis's (confidential, client_secret_basic, ES256 ID tokens). Its
// interaction logs the user in at once (no password, no hashing) and, as for
// first-party applications, consent is skipped: a flow costs it only the
// protocol's steps. Prints one JSON line when ready: {"issuer", "client_id",
// "client_secret", "sso_client_id", "sso_client_secret", "access_token"}.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const confidential = (client_id) => ({
  client_id,
  client_secret: randomBytes(32).toString('base64url'),
  redirect_uris: ['http://127.0.0.1:9/callback'],
  grant_types: ['authorization_code', 'client_credentials'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'ES256',
});
const client = confidential('bench');
const ssoClient = confidential('bench-sso');
// Its bundled development store keeps only the newest 1,000 objects of all
// kinds, so under load sessions and grants would be evicted within a second
// and single sign-on would silently fall back to a new interaction. A
// production deployment keeps them (Redis, a database): this store keeps
// every object until it expires, in memory.
const stores = new Map();
const grants = new Map();
class MemoryAdapter {
  constructor(name) {
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
  }
  async upsert(id, payload, expiresIn) {
    this.store.set(id, { payload, expires: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.grantId) {
      if (!grants.has(payload.grantId)) grants.set(payload.grantId, []);
      grants.get(payload.grantId).push([this.store, id]);
    }
    if (payload.uid) this.store.set(`uid:${payload.uid}`, { payload, expires: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }
  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expires < Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }
  async findByUid(uid) {
    return this.find(`uid:${uid}`);
  }
  async findByUserCode() {
    return undefined;
  }
  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id) {
    const entry = this.store.get(id);
    this.store.delete(id);
    if (entry?.payload.uid) this.store.delete(`uid:${entry.payload.uid}`);
  }
  async revokeByGrantId(grantId) {
    for (const [store, id] of grants.get(grantId) ?? []) store.delete(id);
    grants.delete(grantId);
  }
}

const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  adapter: MemoryAdapter,
  clients: [client, ssoClient],
  jwks: { keys: [{ ...signing, kid: 'bench-es256', alg: 'ES256', use: 'sig' }] },
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  ttl: { AccessToken: 3600, ClientCredentials: 600, Grant: 3600, Session: 3600, Interaction: 600 },
  // First-party clients: a signed-in user's grant is created without a consent prompt.
  async loadExistingGrant(ctx) {
    const existing = ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (existing) return ctx.oidc.provider.Grant.find(existing);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid');
    await grant.save();
    return grant;
  },
});

// A user's access token for the userinfo measurement, as an authorization
// code exchange would have produced it.
const registered = await provider.Client.find(client.client_id);
const grant = new provider.Grant({ accountId: 'user0', clientId: client.client_id });
grant.addOIDCScope('openid');
const grantId = await grant.save();
const token = new provider.AccessToken({ accountId: 'user0', client: registered, grantId, scope: 'openid', gty: 'authorization_code' });
const accessToken = await token.save();

// The interaction: the user is logged in at once, a new account each time.
let accounts = 0;
const callback = provider.callback();
const server = createServer(async (req, res) => {
  if (!req.url.startsWith('/interaction/')) return callback(req, res);
  try {
    await provider.interactionDetails(req, res);
    await provider.interactionFinished(req, res, { login: { accountId: `user${accounts++}` } }, { mergeWithLastSubmission: false });
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({
    issuer,
    client_id: client.client_id,
    client_secret: client.client_secret,
    sso_client_id: ssoClient.client_id,
    sso_client_secret: ssoClient.client_secret,
    access_token: accessToken,
  }));
});
