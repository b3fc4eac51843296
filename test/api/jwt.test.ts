// OAuth2 bearer JWTs verified against a JWKS served on loopback, beside API keys: roles from the
// `roles` claim; wrong issuer, audience, signature or expiry are 401; an unreachable JWKS is 503.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startTestApp } from './app-helpers.js';

async function identityProvider() {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const sign = (
    claims: Record<string, unknown>,
    o: { key?: typeof privateKey; iss?: string; aud?: string; exp?: string } = {},
  ) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject('svc-storefront')
      .setIssuer(o.iss ?? 'https://id.example')
      .setAudience(o.aud ?? 'middlemart')
      .setIssuedAt()
      .setExpirationTime(o.exp ?? '5m')
      .sign(o.key ?? privateKey);
  return {
    jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
    sign,
    otherKey: other.privateKey,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

void test('JWT bearer tokens authenticate with the roles of their claim; bad ones are 401', async (t) => {
  const idp = await identityProvider();
  t.after(() => idp.close());
  const api = await startTestApp({
    workers: false,
    jwt: { jwksUrl: idp.jwksUrl, issuer: 'https://id.example', audience: 'middlemart' },
  });
  t.after(() => api.close());

  const operator = await idp.sign({ roles: ['operator', 'superuser'] });
  assert.equal((await api.call('GET', '/v1/ops/queues', { key: operator })).status, 200);
  const channel = await idp.sign({ roles: 'channel' });
  const refused = await api.call('GET', '/v1/ops/queues', { key: channel });
  assert.equal(refused.status, 403);

  for (const [what, token] of [
    ['other issuer', await idp.sign({ roles: ['admin'] }, { iss: 'https://evil.example' })],
    ['other audience', await idp.sign({ roles: ['admin'] }, { aud: 'someone-else' })],
    ['other signing key', await idp.sign({ roles: ['admin'] }, { key: idp.otherKey })],
    ['expired', await idp.sign({ roles: ['admin'] }, { exp: '-10m' })],
    ['garbage', 'not.a.jwt'],
  ] as const) {
    const res = await api.call('GET', '/v1/ops/queues', { key: token });
    assert.equal(res.status, 401, what);
  }
  // API keys still work beside JWTs.
  assert.equal(
    (await api.call('GET', '/v1/ops/queues', { key: await api.key(['operator']) })).status,
    200,
  );
});

void test('an unreachable JWKS is a 503, not a 401 or a 500', async (t) => {
  const api = await startTestApp({
    workers: false,
    jwt: { jwksUrl: 'http://127.0.0.1:9/jwks.json', issuer: 'https://id.example', audience: 'x' },
  });
  t.after(() => api.close());
  const idp = await identityProvider();
  t.after(() => idp.close());
  const res = await api.call('GET', '/v1/ops/queues', {
    key: await idp.sign({ roles: ['admin'] }),
  });
  assert.equal(res.status, 503, res.text);
  assert.equal(res.headers.get('retry-after'), '1');
});
