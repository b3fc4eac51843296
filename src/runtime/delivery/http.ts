// An HTTP sender for the delivery gate, on undici. Every attempt of a delivery carries the same
// `Idempotency-Key`, and the W3C `traceparent` when one is given; the body is sent as JSON; the
// gate's AbortSignal cancels the request. A connection or protocol error throws (retryable).

import { request, type Dispatcher } from 'undici';
import type { DeliveryAttempt, DeliveryResponse } from './types.js';

export type HttpDeliveryMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET';

export interface HttpSenderOptions {
  /** e.g. `https://erp.example.com/api`; joined to `path` with exactly one slash. */
  baseUrl: string;
  path: string;
  /** Default POST. */
  method?: HttpDeliveryMethod;
  /** Extra headers (e.g. authorization). The idempotency key and traceparent always win. */
  headers?: Record<string, string>;
  /** Serialised as JSON once, so every attempt sends the same bytes. Omit for no body. */
  body?: unknown;
  /** W3C traceparent of the delivery, sent on every attempt. */
  traceparent?: string;
  /** undici dispatcher (Agent/Pool) to use instead of the global one. */
  dispatcher?: Dispatcher;
  /** Response bodies larger than this are dropped (status and headers still count). 1 MiB. */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export type DeliverySend = DeliveryAttempt['send'];

const JSON_CONTENT_TYPE = /^\s*application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** Joins a base URL and a path with exactly one slash between them. */
export function joinUrl(baseUrl: string, path: string): string {
  if (path === '') return baseUrl;
  return `${baseUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

export function httpSender(opts: HttpSenderOptions): DeliverySend {
  const url = joinUrl(opts.baseUrl, opts.path);
  const method = opts.method ?? 'POST';
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const baseHeaders: Record<string, string> = { accept: 'application/json' };
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    baseHeaders[name.toLowerCase()] = value;
  }
  if (payload !== undefined) baseHeaders['content-type'] ??= 'application/json';

  return async ({ signal, idempotencyKey }): Promise<DeliveryResponse> => {
    const headers: Record<string, string> = { ...baseHeaders, 'idempotency-key': idempotencyKey };
    if (opts.traceparent !== undefined) headers.traceparent = opts.traceparent;
    const response = await request(url, {
      method,
      headers,
      signal,
      ...(payload === undefined ? {} : { body: payload }),
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });
    // Always consume the body: an unread body keeps the connection from returning to the pool.
    const text = await readText(response.body, maxBodyBytes);
    const result: DeliveryResponse = { status: response.statusCode };
    const retryAfter = firstHeader(response.headers['retry-after']);
    if (retryAfter !== undefined) result.retryAfter = retryAfter;
    const body =
      text === undefined
        ? undefined
        : parseBody(text, firstHeader(response.headers['content-type']));
    if (body !== undefined) result.body = body;
    return result;
  };
}

/** The body as text, or undefined when it exceeds `maxBytes` (the stream is then destroyed). */
async function readText(
  body: AsyncIterable<Buffer | string>,
  maxBytes: number,
): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > maxBytes) return undefined; // leaving the loop destroys the stream
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** JSON when the content type says so (and it parses); otherwise the text, if any. */
function parseBody(text: string, contentType: string | undefined): unknown {
  if (text === '') return undefined;
  if (contentType !== undefined && JSON_CONTENT_TYPE.test(contentType)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}
