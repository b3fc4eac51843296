// `middlemart simulate` beside a running `middlemart start`: the sandbox session fills the
// target, the development key and the estate's systems; flags and MIDDLEMART_API_KEY win.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { estateSystemsOf, withSessionDefaults } from '../../src/cli/commands/simulate.js';
import {
  readSandboxSession,
  removeSandboxSession,
  writeSandboxSession,
} from '../../src/cli/session.js';

const session = {
  url: 'http://127.0.0.1:18080',
  apiKey: 'mm_0123456789ab_secret',
  estateConfig:
    'version: 1\nsystems:\n  - id: shop\n    kind: shopify\n    baseUrl: http://127.0.0.1:17103\n',
};

test('the session is written private, read back and removed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-session-'));
  try {
    const file = join(dir, 'nested', 'sandbox-session.json');
    assert.equal(readSandboxSession(file), undefined);
    writeSandboxSession(session, file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readSandboxSession(file), session);
    removeSandboxSession(file);
    assert.equal(readSandboxSession(file), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without flags, simulate targets the sandbox with its key and systems', () => {
  const saved = process.env.MIDDLEMART_API_KEY;
  delete process.env.MIDDLEMART_API_KEY;
  try {
    const o = withSessionDefaults({ seed: 1 }, session);
    assert.equal(o.target, session.url);
    assert.equal(o.apiKey, session.apiKey);
    assert.equal(o.estateConfig, session.estateConfig);
    assert.deepEqual(estateSystemsOf(session.estateConfig, 'x'), {
      systems: [{ id: 'shop', url: 'http://127.0.0.1:17103' }],
      commerceSystem: 'shop',
    });
    // Another target: the sandbox's key is not sent there.
    const other = withSessionDefaults({ seed: 1, target: 'http://127.0.0.1:9999' }, session);
    assert.equal(other.apiKey, undefined);
    assert.equal(other.estateConfig, undefined);
    // No session: the documented default target.
    assert.equal(withSessionDefaults({ seed: 1 }, undefined).target, 'http://127.0.0.1:8080');
    // The environment's key wins over the session's, a flag over both.
    process.env.MIDDLEMART_API_KEY = 'mm_env';
    assert.equal(withSessionDefaults({ seed: 1 }, session).apiKey, 'mm_env');
    assert.equal(withSessionDefaults({ seed: 1, apiKey: 'mm_flag' }, session).apiKey, 'mm_flag');
  } finally {
    if (saved === undefined) delete process.env.MIDDLEMART_API_KEY;
    else process.env.MIDDLEMART_API_KEY = saved;
  }
});
