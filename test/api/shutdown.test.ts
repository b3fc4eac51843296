import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildServer, installShutdown, shutdownServer } from '../../src/api/server.js';
import { capturingLogger, fakeDeps } from './helpers.js';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A server on a loopback ephemeral port with a `/slow` route that waits for `release`. */
async function slowServer(events: string[]) {
  const entered = deferred();
  const release = deferred();
  const { logger } = capturingLogger();
  const server = await buildServer(fakeDeps(), { logger });
  server.get('/slow', { config: { access: ['admin'] } }, async () => {
    events.push('slow-started');
    entered.resolve();
    await release.promise;
    return { done: true };
  });
  server.addHook('onResponse', async (request) => {
    if (request.url === '/slow') events.push('slow-response-sent');
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const { port } = server.server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, entered, release, logger };
}

function fakeProcess() {
  const emitter = new EventEmitter();
  return emitter as unknown as Pick<NodeJS.Process, 'on' | 'removeListener'> & EventEmitter;
}

void test('on SIGTERM an in-flight request completes, then onClose runs, then exit(0)', async () => {
  const events: string[] = [];
  const { server, url, entered, release, logger } = await slowServer(events);
  const signals = fakeProcess();
  const exited = deferred<number>();
  installShutdown(server, {
    logger,
    signalSource: signals,
    exit: (code) => {
      events.push(`exit:${code}`);
      exited.resolve(code);
    },
    onClose: async () => {
      events.push('onClose');
    },
  });

  const inFlight = fetch(`${url}/slow`);
  await entered.promise;
  signals.emit('SIGTERM');
  // Shutdown is in progress but waits for the request.
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(events, ['slow-started']);
  assert.equal(server.server.listening, false, 'no longer accepting connections');

  release.resolve();
  const res = await inFlight;
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { done: true });
  assert.equal(await exited.promise, 0);
  assert.deepEqual(events, ['slow-started', 'slow-response-sent', 'onClose', 'exit:0']);
});

void test('a second signal while shutting down exits 1 at once', async () => {
  const events: string[] = [];
  const { server, url, entered, release, logger } = await slowServer(events);
  const signals = fakeProcess();
  const codes: number[] = [];
  const handle = installShutdown(server, {
    logger,
    signalSource: signals,
    exit: (code) => codes.push(code),
    onClose: async () => {
      events.push('onClose');
    },
  });
  const inFlight = fetch(`${url}/slow`);
  await entered.promise;
  signals.emit('SIGTERM');
  signals.emit('SIGINT');
  assert.deepEqual(codes, [1]);
  assert.ok(!events.includes('onClose'));

  // Let the first shutdown finish so the test leaves nothing behind.
  release.resolve();
  await (await inFlight).text();
  await handle.shutdown('test cleanup');
  handle.uninstall();
  assert.equal(signals.listenerCount('SIGTERM'), 0);
});

void test('shutdown runs onClose even when the server fails to close, and reports failure with exit(1)', async () => {
  const { logger } = capturingLogger();
  const calls: string[] = [];
  const broken = {
    close: async () => {
      calls.push('close');
      throw new Error('close failed');
    },
  } as unknown as FastifyInstance;
  await assert.rejects(
    shutdownServer(broken, async () => {
      calls.push('onClose');
    }),
    /close failed/,
  );
  assert.deepEqual(calls, ['close', 'onClose']);

  const signals = fakeProcess();
  const exited = deferred<number>();
  const server = await buildServer(fakeDeps(), { logger });
  installShutdown(server, {
    logger,
    signalSource: signals,
    signals: ['SIGHUP'],
    exit: (code) => exited.resolve(code),
    onClose: async () => {
      throw new Error('store close failed');
    },
  });
  signals.emit('SIGHUP');
  assert.equal(await exited.promise, 1);
});

void test('the handle shutdown() is the same promise on every call', async () => {
  const { logger } = capturingLogger();
  const server = await buildServer(fakeDeps(), { logger });
  let closes = 0;
  const handle = installShutdown(server, {
    logger,
    signalSource: fakeProcess(),
    exit: () => assert.fail('shutdown() does not exit'),
    onClose: async () => {
      closes += 1;
    },
  });
  const a = handle.shutdown('first');
  const b = handle.shutdown('second');
  assert.equal(a, b);
  await a;
  assert.equal(closes, 1);
  handle.uninstall();
});

void test('a request that outlives the drain timeout has its connection cut, and onClose still runs', async () => {
  const events: string[] = [];
  const { server, url, entered, release } = await slowServer(events);
  const inFlight = fetch(`${url}/slow`).then(
    (res) => `status:${res.status}`,
    () => 'connection-cut',
  );
  await entered.promise;
  await shutdownServer(
    server,
    async () => {
      events.push('onClose');
    },
    100,
  );
  assert.equal(await inFlight, 'connection-cut');
  assert.deepEqual(events, ['slow-started', 'onClose']);
  release.resolve();
});
