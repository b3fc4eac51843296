// A small JSON-over-HTTP helper for the customer 360 sources, and a TTL cache for reference data
// (id look-ups, access tokens) so a 360 view does not repeat them per request.

export class SourceHttpError extends Error {
  override readonly name = 'SourceHttpError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export type FetchLike = typeof fetch;

/** GETs (or POSTs) JSON; 404 → undefined; any other non-2xx → SourceHttpError. */
export async function requestJson<T>(
  fetchImpl: FetchLike,
  url: string,
  init: { headers?: Record<string, string>; signal: AbortSignal; method?: string; body?: string },
): Promise<T | undefined> {
  const res = await fetchImpl(url, {
    method: init.method ?? 'GET',
    headers: { accept: 'application/json', ...init.headers },
    signal: init.signal,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  const text = await res.text();
  if (!res.ok) {
    throw new SourceHttpError(`${new URL(url).pathname} answered ${res.status}`, res.status);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new SourceHttpError(`${new URL(url).pathname} answered malformed JSON`, res.status);
  }
}

/** Values kept for a fixed time (reference data: ids, tokens). */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V, ttlMs = this.ttlMs): void {
    if (ttlMs <= 0) return;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { value, until: this.now() + ttlMs });
  }
}

export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}
