// The simulator kit: every sandbox simulator is a Fastify server on 127.0.0.1 built from this,
// so all of them share the same inspection surface (GET /_sandbox/state), the same fault
// injection (POST/DELETE /_sandbox/faults) and the same recording of what they received.
import { timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FaultInjector, parseFaultRequest } from './faults.js';

export { FaultInjector } from './faults.js';
export type { ActiveFault, FaultSpec, FaultSpecInput, FaultDecision } from './faults.js';

export interface SimulatorOptions {
  /** Port to listen on; 0 (the default) picks an ephemeral port. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Random source for faults (and any simulator randomness); use mulberry32(seed) to reproduce. */
  random?: () => number;
  /** Clock in epoch milliseconds; default Date.now. */
  now?: () => number;
}

export interface Simulator {
  readonly name: string;
  /** The Fastify instance: add routes to it before listen(). */
  readonly app: FastifyInstance;
  readonly faults: FaultInjector;
  /** Records something the simulator received, on a named channel (e.g. 'salesOrders'). */
  record(channel: string, entry: unknown): void;
  /** The retained entries of one channel, or of every channel keyed by channel. */
  received(channel?: string): unknown[] | Record<string, unknown[]>;
  /** Adds `by` (default 1) to a named counter (e.g. 'rateLimitViolations'). */
  count(counter: string, by?: number): void;
  counters(): Record<string, number>;
  /** Extra state merged into GET /_sandbox/state. */
  setStateProvider(fn: () => Record<string, unknown>): void;
  /** Starts listening; resolves the base URL, e.g. http://127.0.0.1:41234. */
  listen(): Promise<string>;
  close(): Promise<void>;
  /** The base URL once listening. */
  readonly url: string | undefined;
}

/** Entries retained per channel; totals keep counting beyond it. */
export const RECEIVED_RETENTION = 1000;

/** Where the sandbox's own inspection and control routes live; faults never apply to them. */
export const SANDBOX_CONTROL_PREFIX = '/_sandbox';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the fault hook when this request's response must be corrupted. */
    sandboxMalformed?: boolean;
  }
}

/**
 * Creates a simulator: a Fastify app (logger off) with the sandbox control routes and the fault
 * hook installed. Content-type parsers beyond Fastify's JSON default are registered here for all
 * simulators: `application/x-www-form-urlencoded` (parsed to a string record) and
 * `text/xml` / `application/xml` / `application/soap+xml` / `text/csv` / `text/plain` (raw string).
 *
 * Fault behaviour on every route outside `/_sandbox`:
 * - latency: the request waits before being handled;
 * - errorRate: answered with the configured status and `{"error":"sandbox_fault", ...}` (not handled);
 * - rateLimitStorm: 429 with a `Retry-After` header (not handled);
 * - outage: the TCP socket is destroyed without a response (clients see a transport error);
 * - malformed: the request IS handled (its effect happens) and the response becomes a 200 with
 *   a truncated body, the nastiest case for a client that must then find out what happened.
 */
export function createSimulator(name: string, opts: SimulatorOptions = {}): Simulator {
  const now = opts.now ?? Date.now;
  const faults = new FaultInjector({ random: opts.random ?? Math.random, now });
  const app = Fastify({ logger: false, bodyLimit: 5 * 1024 * 1024 });

  const receivedEntries = new Map<string, unknown[]>();
  const receivedTotals = new Map<string, number>();
  const counterValues = new Map<string, number>();
  let stateProvider: (() => Record<string, unknown>) | undefined;
  let url: string | undefined;

  const count = (counter: string, by = 1): void => {
    counterValues.set(counter, (counterValues.get(counter) ?? 0) + by);
  };

  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    },
  );
  app.addContentTypeParser(
    ['text/xml', 'application/xml', 'application/soap+xml', 'text/csv', 'text/plain'],
    { parseAs: 'string' },
    (_req, body, done) => {
      done(null, String(body));
    },
  );

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.url.startsWith(SANDBOX_CONTROL_PREFIX)) return;
    const decision = faults.decide(request.url, request.method);
    if (decision.delayMs > 0) {
      count('faults.latency');
      await sleep(decision.delayMs);
    }
    const outcome = decision.outcome;
    switch (outcome.type) {
      case 'pass':
        return;
      case 'outage':
        count('faults.outage');
        reply.hijack();
        request.raw.socket.destroy();
        return;
      case 'error':
        count('faults.errorRate');
        return reply
          .code(outcome.status)
          .send({ error: 'sandbox_fault', message: 'injected error', status: outcome.status });
      case 'rateLimit':
        count('faults.rateLimitStorm');
        return reply
          .code(429)
          .header('retry-after', String(outcome.retryAfterSeconds))
          .send({ error: 'rate_limited', message: 'injected rate-limit storm' });
      case 'malformed':
        count('faults.malformed');
        request.sandboxMalformed = true;
        return;
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (request.sandboxMalformed !== true) return payload;
    reply.code(200);
    reply.removeHeader('content-length');
    return truncate(payload);
  });

  app.get(`${SANDBOX_CONTROL_PREFIX}/state`, async () => {
    const received: Record<string, unknown[]> = {};
    const totals: Record<string, number> = {};
    for (const [channel, entries] of receivedEntries) received[channel] = entries;
    for (const [channel, total] of receivedTotals) totals[channel] = total;
    return {
      name,
      received,
      receivedTotals: totals,
      counters: Object.fromEntries(counterValues),
      faults: faults.active(),
      ...(stateProvider ? stateProvider() : {}),
    };
  });

  app.post(`${SANDBOX_CONTROL_PREFIX}/faults`, async (request, reply) => {
    const parsed = parseFaultRequest(request.body);
    if (!parsed.ok) {
      return reply.code(400).send({ error: 'invalid_fault', errors: parsed.errors });
    }
    const injected = parsed.faults.map((f) => faults.inject(f));
    return reply.code(201).send({ faults: injected });
  });

  app.delete(`${SANDBOX_CONTROL_PREFIX}/faults`, async (_request, reply) => {
    faults.clear();
    return reply.code(204).send();
  });

  app.delete<{ Params: { id: string } }>(
    `${SANDBOX_CONTROL_PREFIX}/faults/:id`,
    async (request, reply) => {
      if (!faults.remove(request.params.id)) {
        return reply.code(404).send({ error: 'not_found', message: 'no such fault' });
      }
      return reply.code(204).send();
    },
  );

  const simulator: Simulator = {
    name,
    app,
    faults,
    record(channel, entry) {
      let entries = receivedEntries.get(channel);
      if (entries === undefined) {
        entries = [];
        receivedEntries.set(channel, entries);
      }
      entries.push(entry);
      if (entries.length > RECEIVED_RETENTION)
        entries.splice(0, entries.length - RECEIVED_RETENTION);
      receivedTotals.set(channel, (receivedTotals.get(channel) ?? 0) + 1);
    },
    received(channel?: string) {
      if (channel !== undefined) return [...(receivedEntries.get(channel) ?? [])];
      const all: Record<string, unknown[]> = {};
      for (const [c, entries] of receivedEntries) all[c] = [...entries];
      return all;
    },
    count,
    counters() {
      return Object.fromEntries(counterValues);
    },
    setStateProvider(fn) {
      stateProvider = fn;
    },
    async listen() {
      const host = opts.host ?? '127.0.0.1';
      await app.listen({ port: opts.port ?? 0, host });
      const address = app.server.address();
      if (address === null || typeof address === 'string') {
        throw new Error(`simulator ${name}: unexpected listen address ${String(address)}`);
      }
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      url = `http://${shownHost}:${address.port}`;
      return url;
    },
    async close() {
      await app.close();
    },
    get url() {
      return url;
    },
  };
  return simulator;
}

/** Corrupts a response body: a prefix of it, never a complete JSON/XML document. */
function truncate(payload: unknown): string {
  let text: string;
  if (typeof payload === 'string') text = payload;
  else if (Buffer.isBuffer(payload)) text = payload.toString('utf8');
  else if (payload === null || payload === undefined) text = '';
  else text = '';
  if (text.length < 2) return '{"';
  return text.slice(0, Math.max(1, Math.floor(text.length / 2)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Mulberry32: a small, fast seeded PRNG in [0, 1), used across the sandbox for reproducibility. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decodes an HTTP Basic `Authorization` header; undefined when absent or not Basic. */
export function basicCredentials(
  header: string | undefined,
): { username: string; password: string } | undefined {
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Compares two secrets in constant time (for equal lengths). */
export function secretsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}
