// Test support: a minimal pass-through delivery gate (status classes only, fixed retry delay),
// polling helpers and a recording HTTP stub destination on 127.0.0.1.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeliveryGate } from '../../src/runtime/types.js';
import type { DeliveryAttempt, DeliveryOutcome } from '../../src/runtime/delivery/types.js';

export function passThroughGate(
  opts: { retryMs?: number; maxAttempts?: number } = {},
): DeliveryGate {
  const retryMs = opts.retryMs ?? 20;
  const maxAttempts = opts.maxAttempts ?? 1000;
  return {
    async attempt(a: DeliveryAttempt): Promise<DeliveryOutcome> {
      const started = Date.now();
      const ctl = new AbortController();
      try {
        const r = await a.send({ signal: ctl.signal, idempotencyKey: a.idempotencyKey });
        const latencyMs = Date.now() - started;
        if (r.status >= 200 && r.status < 300)
          return { kind: 'delivered', status: r.status, latencyMs };
        const retryable = r.status >= 500 || [408, 425, 429].includes(r.status);
        if (!retryable || a.attempt >= maxAttempts) {
          return { kind: 'permanent', error: `status ${r.status}`, status: r.status, latencyMs };
        }
        return {
          kind: 'retry',
          afterMs: retryMs,
          error: `status ${r.status}`,
          status: r.status,
          latencyMs,
        };
      } catch (err) {
        const latencyMs = Date.now() - started;
        if (a.attempt >= maxAttempts) return { kind: 'permanent', error: String(err), latencyMs };
        return { kind: 'retry', afterMs: retryMs, error: String(err), latencyMs };
      }
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `check` returns true or the time runs out (then throws with `what`). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface StubDestination {
  url: string;
  /** Every attempt in arrival order. */
  attempts: { key: string; body: unknown; status: number }[];
  /** Applied effects by idempotency key (each applied once). */
  applied: Map<string, unknown>;
  /** Status to answer with (default 200); may depend on the request. */
  respond: (key: string, body: unknown) => number;
  close(): Promise<void>;
}

export async function startStub(): Promise<StubDestination> {
  const stub: StubDestination = {
    url: '',
    attempts: [],
    applied: new Map(),
    respond: () => 200,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = String(req.headers['idempotency-key'] ?? '');
      let body: unknown = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = null;
      }
      const status = stub.respond(key, body);
      stub.attempts.push({ key, body, status });
      if (status >= 200 && status < 300 && !stub.applied.has(key)) stub.applied.set(key, body);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return stub;
}

/** A sender that POSTs the delivery's payload with its Idempotency-Key header. */
export function postTo(url: string) {
  return async (
    d: { payload: unknown; idempotencyKey: string },
    ctx: { signal: AbortSignal },
  ): Promise<{ status: number }> => {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': d.idempotencyKey },
      body: JSON.stringify(d.payload),
      signal: ctx.signal,
    });
    await r.arrayBuffer();
    return { status: r.status };
  };
}
