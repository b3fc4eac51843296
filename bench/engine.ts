// Engine benchmark (`npm run bench:engine`): durable accept over HTTP against a bare Fastify
// route answering 202 without storing (the ceiling, measured in the same run), delivered
// messages per second to a local stub answering at once, and the RSS of a process holding a
// large queued backlog; on SQLite, and on PostgreSQL when MIDDLEMART_BENCH_PG_URL (or
// MIDDLEMART_TEST_PG_URL) is set. Each measurement runs in a child process; the last line
// printed is one JSON object with every figure.
//
// The load generator (autocannon) runs in a child process of its own too, for the ceiling and the
// durable server alike, so neither server shares its event loop with the client. Accept is
// measured twice: at full load (throughput against the ceiling, in rounds that alternate the
// ceiling and the durable servers, each durable run compared with the ceiling just before it;
// the median ratio is reported), then at a fixed offered rate of half the median ceiling's
// (latency: p50/p99 when not saturated), where the bare route is measured too, for the latency
// the machine and the load generator add to any server.
//
// Bounds (environment): BENCH_DURATION_S (default 5) per load run, BENCH_ACCEPT_ROUNDS (3),
// BENCH_DELIVERIES (20,000), BENCH_QUEUE_COUNT (1,000,000) with BENCH_FILL_BUDGET_S (90) per
// store. Parts: BENCH_ONLY
// (comma list of accept, deliver, backlog; default all), BENCH_STORES (comma list of sqlite,
// sqlite-thread, postgres; default sqlite and postgres when a PostgreSQL URL is set;
// `sqlite-thread` is SQLite with its writer connection on a worker thread, `?writer=thread`). Tuning for the delivery run:
// BENCH_POOL_SIZE (PostgreSQL pool, default 10), BENCH_HANDLER_BATCH (handlers per commit).
// BENCH_CPU_PROF=<dir> writes CPU profiles of the durable server and drain children there.
import { spawn } from 'node:child_process';
import { hash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import pg from 'pg';
import { Pool } from 'undici';
import { openStore } from '../src/store/index.js';
import { createEngine } from '../src/runtime/engine.js';
import { createDeliveryGate } from '../src/runtime/delivery/index.js';
import { createPayloadSealer } from '../src/runtime/sealing.js';

const SELF = fileURLToPath(import.meta.url);
const DURATION = Number(process.env.BENCH_DURATION_S ?? '5');
/** Accept rounds (ceiling, then each store), BENCH_ACCEPT_ROUNDS (default 3). */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ACCEPT_ROUNDS ?? '3'));
const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? '20000');
const QUEUE_COUNT = Number(process.env.BENCH_QUEUE_COUNT ?? '1000000');
const FILL_BUDGET_S = Number(process.env.BENCH_FILL_BUDGET_S ?? '90');
const PG_URL = process.env.MIDDLEMART_BENCH_PG_URL ?? process.env.MIDDLEMART_TEST_PG_URL;
const PARTS = new Set((process.env.BENCH_ONLY ?? 'accept,deliver,backlog').split(','));
const STORES = new Set((process.env.BENCH_STORES ?? 'sqlite,postgres').split(','));
/**
 * How SQLite commits become durable: `full` (synchronous=FULL, the default) or `background`, set
 * through the store URL (`?sync=background`) for every SQLite run: accept, delivery and backlog.
 */
const SQLITE_SYNC = process.env.BENCH_SQLITE_SYNC === 'background' ? 'background' : 'full';
/**
 * BENCH_SEAL=1: every payload sealed at rest (AES-256-GCM, ADR 0018) in the accept and drain
 * runs; BENCH_SEAL=personal: the default scope (only personal data), where the bench's messages
 * are not personal and stay clear.
 */
const SEALER =
  process.env.BENCH_SEAL === '1' || process.env.BENCH_SEAL === 'personal'
    ? {
        sealer: createPayloadSealer({ current: randomBytes(32) }),
        ...(process.env.BENCH_SEAL === 'personal'
          ? { sealScope: 'personal-data' as const, personalDataTypes: ['customer.created'] }
          : {}),
      }
    : {};

// ----------------------------------------------------------------------------- child modes

function storeOptions(): { url: string; schema?: string } {
  const url = process.env.BENCH_DB_URL!;
  const schema = process.env.BENCH_SCHEMA;
  return schema ? { url, schema } : { url };
}

function say(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** The JSON text of each request body, as received. */
const rawBodies = new WeakMap<object, string>();

async function serve(mode: 'ceiling' | 'durable'): Promise<void> {
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
  // Both routes parse the body alike; the text is kept, so the durable route hashes and stores
  // the body as received instead of serialising the parsed object again.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    try {
      rawBodies.set(req, body as string);
      done(null, JSON.parse(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  if (mode === 'ceiling') {
    app.post('/v1/messages', async (_req, reply) => reply.code(202).send({ accepted: true }));
  } else {
    const { url, schema } = storeOptions();
    const store = await openStore(url, schema ? { schema } : {});
    const engine = createEngine({ store, ...SEALER });
    app.post('/v1/messages', async (req, reply) => {
      const body = req.body as { id: string };
      // The text as received: hashed, and stored as it is.
      const json = rawBodies.get(req)!;
      const r = await engine.accept({
        source: 'bench',
        idempotencyKey: body.id,
        requestHash: hash('sha256', json, 'base64url'),
        type: 'bench.message',
        // 1,000 keys, as many orders in flight at once would give (the delivery and backlog
        // runs use 1,000 and 10,000): one shared key would serialise every accept on it.
        partitionKey: `k-${body.id.slice(-3)}`,
        priority: 'standard',
        payload: body,
        payloadJson: json,
      });
      return reply.code(r.outcome === 'accepted' || r.outcome === 'duplicate' ? 202 : 409).send(r);
    });
  }
  // Exit normally on SIGTERM (so `--cpu-prof` writes its profile).
  process.on('SIGTERM', () => process.exit(0));
  await app.listen({ port: 0, host: '127.0.0.1' });
  say({ port: (app.server.address() as AddressInfo).port });
}

/** Child mode `stub`: the destination, answering 200 at once, in a process of its own. */
async function stub(): Promise<void> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.on('SIGTERM', () => process.exit(0));
  say({ port: (server.address() as AddressInfo).port });
}

async function drain(): Promise<void> {
  const stubChild = child('stub', {});
  const stubUrl = `http://127.0.0.1:${String((await stubChild.first).port)}/`;
  const { url, schema } = storeOptions();
  const poolSize = Number(process.env.BENCH_POOL_SIZE ?? '10');
  const store = await openStore(url, { poolSize, ...(schema ? { schema } : {}) });
  const gate = createDeliveryGate([
    {
      id: 'stub',
      timeoutMs: 5000,
      retry: { maxAttempts: 10, baseDelayMs: 50, maxDelayMs: 1000 },
      circuitBreaker: { consecutiveFailures: 1000, halfOpenAfterMs: 1000 },
      concurrency: { max: 64, adaptive: false },
    },
  ]);
  const engine = createEngine({
    store,
    workers: 16,
    ...(process.env.BENCH_HANDLER_BATCH
      ? { handlerBatch: Number(process.env.BENCH_HANDLER_BATCH) }
      : {}),
    deliveryWorkers: 64,
    perDestinationInFlight: 64,
    gate,
    ...SEALER,
  });
  engine.registerHandler('bench.message', async (msg, tx) => {
    await tx.deliver({ destination: 'stub', payload: msg.payload });
  });
  // A keep-alive pool with as many connections as attempts in flight.
  const client = new Pool(stubUrl, { connections: 64, pipelining: 1 });
  engine.registerSender('stub', async (d, ctx) => {
    const r = await client.request({
      path: '/',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': d.idempotencyKey },
      body: JSON.stringify(d.payload),
      signal: ctx.signal,
    });
    await r.body.dump();
    return { status: r.statusCode };
  });
  const payload = { text: 'x'.repeat(1400) };
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < DELIVERIES; i++) {
    pending.push(
      engine.accept({
        source: 'bench',
        idempotencyKey: `d-${i}`,
        requestHash: 'h',
        type: 'bench.message',
        partitionKey: `k-${i % 1000}`,
        priority: 'standard',
        payload,
      }),
    );
    if (pending.length >= 2000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const started = Date.now();
  engine.start();
  const deadline = started + 120_000;
  let processedAt = 0;
  while (engine.counters.delivered < DELIVERIES && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    if (!processedAt && engine.counters.processed >= DELIVERIES) processedAt = Date.now();
  }
  const seconds = (Date.now() - started) / 1000;
  await engine.stop();
  await store.close();
  await client.close();
  stubChild.kill();
  await stubChild.done;
  say({
    delivered: engine.counters.delivered,
    processed: engine.counters.processed,
    seconds,
    handlersSeconds: ((processedAt || Date.now()) - started) / 1000,
    perSecond: Math.round(engine.counters.delivered / seconds),
  });
}

async function fill(): Promise<void> {
  const { url, schema } = storeOptions();
  const store = await openStore(url, schema ? { schema } : {});
  const engine = createEngine({ store, acceptBatchMax: 2000 });
  const payload = { text: 'x'.repeat(1400) };
  const deadline = Date.now() + FILL_BUDGET_S * 1000;
  const started = Date.now();
  let queued = 0;
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < QUEUE_COUNT && Date.now() < deadline; i++) {
    pending.push(
      engine
        .accept({
          source: 'bench',
          idempotencyKey: `q-${i}`,
          requestHash: 'h',
          type: 'bench.message',
          partitionKey: `k-${i % 10_000}`,
          priority: i % 10 === 0 ? 'critical' : 'standard',
          payload,
        })
        .then(() => void queued++),
    );
    if (pending.length >= 4000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const fillSeconds = (Date.now() - started) / 1000;
  if (global.gc) global.gc();
  const stats = await engine.stats();
  say({
    queued,
    depth: stats.messages.total.depth,
    fillSeconds,
    acceptPerSecond: Math.round(queued / fillSeconds),
    rssMb: Math.round(process.memoryUsage().rss / 1048576),
  });
  await store.close();
}

// ---------------------------------------------------------------------------------- parent

interface Child {
  first: Promise<Record<string, unknown>>;
  kill(): void;
  done: Promise<void>;
}

function child(mode: string, env: Record<string, string>): Child {
  // BENCH_CPU_PROF=<dir>: the server and drain children write CPU profiles there (all threads).
  const prof =
    process.env.BENCH_CPU_PROF && (mode === 'durable' || mode === 'drain')
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
      : [];
  const proc = spawn(process.execPath, [...prof, '--expose-gc', '--import', 'tsx', SELF, mode], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buf = '';
  let resolveFirst!: (v: Record<string, unknown>) => void;
  let rejectFirst!: (e: Error) => void;
  const first = new Promise<Record<string, unknown>>((res, rej) => {
    resolveFirst = res;
    rejectFirst = rej;
  });
  proc.stdout!.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    const nl = buf.indexOf('\n');
    if (nl >= 0) resolveFirst(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
  });
  const done = new Promise<void>((r) =>
    proc.on('exit', (code) => {
      rejectFirst(new Error(`${mode} exited with ${code}`));
      r();
    }),
  );
  return { first, kill: () => proc.kill('SIGTERM'), done };
}

const PADDING = 'x'.repeat(1500 - 60);
const BODY_BYTES = JSON.stringify({ id: 'r-00000000-000000', text: PADDING }).length;

/** Child mode `load`: autocannon against BENCH_PORT, at BENCH_RATE req/s when set. */
async function loadChild(): Promise<void> {
  const port = Number(process.env.BENCH_PORT);
  const rate = process.env.BENCH_RATE ? Number(process.env.BENCH_RATE) : undefined;
  const run = randomBytes(4).toString('hex');
  let n = 0;
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/v1/messages`,
    connections: 64,
    duration: DURATION,
    ...(rate ? { overallRate: rate } : {}),
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // A unique idempotency key per request (every request is a new message).
        setupRequest: (req) => ({
          ...req,
          body: JSON.stringify({ id: `r-${run}-${String(++n).padStart(6, '0')}`, text: PADDING }),
        }),
      },
    ],
  });
  say({
    requestsPerSecond: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    ...(rate ? { offeredPerSecond: rate } : {}),
  });
}

interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  offeredPerSecond?: number;
}

async function load(port: number, rate?: number, seconds?: number): Promise<LoadResult> {
  const c = child('load', {
    BENCH_PORT: String(port),
    ...(rate ? { BENCH_RATE: String(rate) } : {}),
    ...(seconds ? { BENCH_DURATION_S: String(seconds) } : {}),
  });
  const r = (await c.first) as unknown as LoadResult;
  await c.done;
  return r;
}

/**
 * A fresh server of `mode` offered `rate` req/s, after a 2 s warm-up at full load (JIT, prepared
 * statements), as the servers measured at full load were warm.
 */
async function loadAtRate(
  mode: 'ceiling' | 'durable',
  env: Record<string, string>,
  rate: number,
): Promise<LoadResult> {
  const server = child(mode, env);
  const { port } = (await server.first) as { port: number };
  await load(port, undefined, 2);
  const r = await load(port, rate);
  server.kill();
  await server.done;
  return r;
}

interface Target {
  name: 'sqlite' | 'sqlite-thread' | 'postgres';
  env: Record<string, string>;
  /** Removes every database the target handed out so far (called after each measurement). */
  cleanup(): Promise<void>;
}

function sqliteTarget(writer: 'main' | 'thread' = 'main'): Target {
  const dir = mkdtempSync(join(tmpdir(), 'mm-bench-'));
  let n = 0;
  return {
    name: writer === 'thread' ? 'sqlite-thread' : 'sqlite',
    get env() {
      // A fresh database file per measurement.
      // BENCH_SQLITE_SYNC=background selects the store's own URL option (the thread writer has
      // none: it syncs with synchronous=FULL).
      const query =
        writer === 'thread'
          ? '?writer=thread'
          : SQLITE_SYNC === 'background'
            ? '?sync=background'
            : '';
      return { BENCH_DB_URL: `sqlite:${join(dir, `bench-${++n}.db`)}${query}` };
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function postgresTarget(url: string): Target {
  const schemas: string[] = [];
  return {
    name: 'postgres',
    get env() {
      const schema = `mm_bench_${randomBytes(5).toString('hex')}`;
      schemas.push(schema);
      return { BENCH_DB_URL: url, BENCH_SCHEMA: schema };
    },
    cleanup: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      await c.end();
    },
  };
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  if (mode === 'ceiling' || mode === 'durable') return serve(mode);
  if (mode === 'stub') return stub();
  if (mode === 'load') {
    await loadChild();
    process.exit(0);
  }
  if (mode === 'drain' || mode === 'fill') {
    await (mode === 'drain' ? drain() : fill());
    process.exit(0);
  }

  const figures: Record<string, unknown> = {
    durationS: DURATION,
    connections: 64,
    bodyBytes: BODY_BYTES,
    sqliteSync: SQLITE_SYNC,
    sealed: process.env.BENCH_SEAL ?? 'no',
  };
  // In the order BENCH_STORES names them (so runs can alternate which SQLite mode goes first).
  const targets = [...STORES].flatMap((name): Target[] => {
    if (name === 'sqlite') return [sqliteTarget()];
    if (name === 'sqlite-thread') return [sqliteTarget('thread')];
    if (name === 'postgres' && PG_URL) return [postgresTarget(PG_URL)];
    return [];
  });
  if (!PG_URL)
    console.log('PostgreSQL skipped: set MIDDLEMART_BENCH_PG_URL or MIDDLEMART_TEST_PG_URL');
  // Accept at full load, in rounds: the ceiling, then each store's durable server, again and
  // again. The machine's speed drifts (the ceiling alone has measured anywhere between 7,000 and
  // 32,000 req/s from one minute to the next), so each durable run is compared with the ceiling
  // measured just before it, and the median of the rounds' ratios is reported.
  let ceiling: LoadResult | undefined;
  /** Half the median ceiling's rate: where latency is measured, not saturated. */
  let half = 0;
  const ceilings: LoadResult[] = [];
  const acceptRounds = new Map<string, { run: LoadResult; ratio: number }[]>();
  if (PARTS.has('accept')) {
    for (let round = 0; round < ROUNDS; round++) {
      const ceilingChild = child('ceiling', {});
      const { port } = (await ceilingChild.first) as { port: number };
      const c = await load(port);
      ceilingChild.kill();
      await ceilingChild.done;
      ceilings.push(c);
      console.log(
        `round ${round + 1}/${ROUNDS} ceiling (bare 202): ${c.requestsPerSecond} req/s p50 ${c.p50Ms} ms p99 ${c.p99Ms} ms`,
      );
      for (const t of targets) {
        const server = child('durable', t.env);
        const { port: p } = (await server.first) as { port: number };
        const run = await load(p);
        server.kill();
        await server.done;
        // Each measurement's database goes at once: the kernel would otherwise go on writing its
        // pages back while the next measurement runs.
        await t.cleanup();
        const ratio = run.requestsPerSecond / Math.max(1, c.requestsPerSecond);
        console.log(
          `round ${round + 1}/${ROUNDS} ${t.name} durable accept: ${run.requestsPerSecond} req/s p50 ${run.p50Ms} ms p99 ${run.p99Ms} ms ` +
            `(${(ratio * 100).toFixed(1)}% of this round's ceiling)`,
        );
        const list = acceptRounds.get(t.name) ?? [];
        list.push({ run, ratio });
        acceptRounds.set(t.name, list);
      }
    }
    // The round with the median ceiling stands for the ceiling.
    ceiling = [...ceilings].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)[
      Math.floor(ceilings.length / 2)
    ]!;
    figures.ceiling = { ...ceiling, rounds: ceilings.map((c) => c.requestsPerSecond) };
    // The bare route's own latency at the rate the durable servers are offered below: what the
    // machine and the load generator add to every p99 there, durable or not.
    half = Math.max(1, Math.round(ceiling.requestsPerSecond / 2));
    const atHalf = await loadAtRate('ceiling', {}, half);
    console.log(
      `ceiling (bare 202) at ${half} req/s offered: ${atHalf.requestsPerSecond} req/s ` +
        `p50 ${atHalf.p50Ms} ms p99 ${atHalf.p99Ms} ms`,
    );
    figures.ceilingAtHalf = atHalf;
  }

  for (const t of targets) {
    const result: Record<string, unknown> = {};
    figures[t.name] = result;
    try {
      const rounds = acceptRounds.get(t.name);
      if (ceiling && rounds) {
        const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[
          Math.floor(rounds.length / 2)
        ]!;
        console.log(
          `${t.name} durable accept: median ${(median.ratio * 100).toFixed(1)}% of the ceiling over ${rounds.length} round(s) ` +
            `(${rounds.map((r) => r.ratio.toFixed(3)).join(', ')})`,
        );
        // Latency when not saturated: half the (median) ceiling's rate, offered at a fixed pace.
        const atHalf = await loadAtRate('durable', t.env, half);
        await t.cleanup();
        console.log(
          `${t.name} durable accept at ${half} req/s offered: ${atHalf.requestsPerSecond} req/s ` +
            `p50 ${atHalf.p50Ms} ms p99 ${atHalf.p99Ms} ms`,
        );
        result.accept = {
          ...median.run,
          ratioToCeiling: Number(median.ratio.toFixed(3)),
          roundRatios: rounds.map((r) => Number(r.ratio.toFixed(3))),
        };
        result.acceptAtHalfCeiling = atHalf;
      }
      if (PARTS.has('deliver')) {
        const drained = await child('drain', t.env).first;
        await t.cleanup();
        console.log(
          `${t.name} delivery: ${String(drained.perSecond)} msg/s (${String(drained.delivered)} in ${String(drained.seconds)} s)`,
        );
        result.delivery = drained;
      }
      if (PARTS.has('backlog')) {
        const filled = await child('fill', t.env).first;
        console.log(
          `${t.name} queued backlog: ${String(filled.queued)} messages in ${String(filled.fillSeconds)} s, RSS ${String(filled.rssMb)} MB`,
        );
        result.backlog = filled;
      }
    } finally {
      await t.cleanup();
    }
  }
  console.log(JSON.stringify(figures));
}

await main();
