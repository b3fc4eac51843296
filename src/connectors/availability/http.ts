// Small HTTP helpers for the availability and price connectors: one JSON call, its answer
// classified the way the delivery gate expects (429 and 5xx transient with Retry-After,
// other 4xx permanent).
import { ActionError } from '../../ports/system-actions.js';

export interface JsonCall {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal;
}

/** Seconds from a Retry-After header (delta seconds, possibly fractional), when present. */
export function retryAfterSeconds(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : undefined;
}

/** Query strings `sku=a&sku=b…` for read-backs, at most `per` SKUs each (URLs stay short). */
export function skuQueries(skus: readonly string[], per = 100): string[] {
  const out: string[] = [];
  for (let i = 0; i < skus.length; i += per) {
    out.push(
      skus
        .slice(i, i + per)
        .map((s) => `sku=${encodeURIComponent(s)}`)
        .join('&'),
    );
  }
  return out;
}

/** Calls `url` and answers its JSON body; throws ActionError for a non-2xx answer. */
export async function callJson(call: JsonCall, system: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(call.url, {
      method: call.method,
      headers: {
        accept: 'application/json',
        ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...call.headers,
      },
      ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
      ...(call.signal ? { signal: call.signal } : {}),
    });
  } catch (err) {
    throw new ActionError(
      `${system}: ${call.method} ${new URL(call.url).pathname} failed: ${(err as Error).message}`,
      'transient',
    );
  }
  const text = await res.text();
  if (res.ok) return text === '' ? undefined : (JSON.parse(text) as unknown);
  const retryAfter = retryAfterSeconds(res.headers.get('retry-after'));
  const transient = res.status === 408 || res.status === 429 || res.status >= 500;
  throw new ActionError(
    `${system}: ${call.method} ${new URL(call.url).pathname} answered ${res.status}: ${text.slice(0, 300)}`,
    transient ? 'transient' : 'permanent',
    { status: res.status, ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }) },
  );
}

/** Joins a base URL and a path without doubling or dropping the slash. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}
