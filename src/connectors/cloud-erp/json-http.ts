// The HTTP exchange every REST connector makes: one request on undici, the body read in full and
// parsed as JSON when it says so. A transport failure (refused, reset, destroyed socket, timeout)
// and an answer that claims JSON but does not parse (a truncated body) are reported as such, so
// each connector can classify them as transient. Shared by the REST connectors of the system
// layer (cloud ERP, CRM, loyalty, WMS, commerce, tax, notifications).
import { request } from 'undici';
import { ActionError } from '../../ports/system-actions.js';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body text. */
  text: string;
  /** The parsed JSON body; undefined when the body is empty or not JSON. */
  json: unknown;
  /** True when the content type said JSON (or the body looked like it) but it did not parse. */
  malformed: boolean;
}

export interface HttpCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** A JSON value (serialised here) or a string sent as is. */
  body?: unknown;
  signal?: AbortSignal;
}

/** A request that got no HTTP answer (connection refused or reset, socket destroyed, aborted). */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

const JSON_TYPE = /^\s*application\/(?:[\w.+-]+\+)?json\b|;\s*type=error/i;

/** Sends one request and reads the whole answer. Throws TransportError when no answer came. */
export async function httpCall(call: HttpCall): Promise<HttpAnswer> {
  const headers: Record<string, string> = { accept: 'application/json', ...(call.headers ?? {}) };
  let payload: string | undefined;
  if (call.body !== undefined) {
    if (typeof call.body === 'string') payload = call.body;
    else {
      payload = JSON.stringify(call.body);
      headers['content-type'] ??= 'application/json';
    }
  }
  let status: number;
  let responseHeaders: Record<string, string | string[] | undefined>;
  let text: string;
  try {
    const response = await request(call.url, {
      method: call.method,
      headers,
      ...(payload !== undefined ? { body: payload } : {}),
      ...(call.signal ? { signal: call.signal } : {}),
    });
    status = response.statusCode;
    responseHeaders = response.headers;
    text = await response.body.text();
  } catch (err) {
    const e = err as { message?: string; code?: string; name?: string };
    throw new TransportError(
      `${call.method} ${call.url}: ${e.message ?? String(err)}`,
      e.code ?? e.name,
    );
  }
  const contentType = firstHeader(responseHeaders['content-type']) ?? '';
  let json: unknown;
  let malformed = false;
  const looksJson = JSON_TYPE.test(contentType) || /^\s*[[{]/.test(text);
  if (text.trim() !== '' && looksJson) {
    try {
      json = JSON.parse(text);
    } catch {
      malformed = true;
    }
  }
  return { status, headers: responseHeaders, text, json, malformed };
}

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Seconds to wait from a Retry-After header (delta seconds or an HTTP date), if any. */
export function retryAfterSecondsOf(
  headers: Record<string, string | string[] | undefined>,
  now: () => number = Date.now,
): number | undefined {
  const raw = firstHeader(headers['retry-after']);
  if (raw === undefined || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const at = Date.parse(raw);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now()) / 1000));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Joins a base URL and a path with exactly one slash between them. */
export function joinUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** A Basic authorization header value. */
export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/**
 * The ActionError for a failed exchange with a REST system: 408, 425, 429 and 5xx are transient
 * (with the system's Retry-After), every other 4xx is permanent with the system's own message;
 * a 2xx whose body does not parse is transient (the caller cannot tell whether it took effect,
 * and every action is idempotent, so it is tried again).
 */
export function actionErrorOf(system: string, answer: HttpAnswer, detail: string): ActionError {
  const retryAfterSeconds = retryAfterSecondsOf(answer.headers);
  const transient =
    answer.status === 408 || answer.status === 425 || answer.status === 429 || answer.status >= 500;
  if (answer.status < 300) {
    return new ActionError(
      `${system}: unreadable answer (${answer.status}): ${detail}`,
      'transient',
      {
        status: answer.status,
        code: 'MALFORMED_RESPONSE',
      },
    );
  }
  return new ActionError(`${system}: ${detail}`, transient ? 'transient' : 'permanent', {
    status: answer.status,
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  });
}

/** Runs one exchange, turning a transport failure into a transient ActionError. */
export async function actionCall(system: string, call: HttpCall): Promise<HttpAnswer> {
  try {
    return await httpCall(call);
  } catch (err) {
    if (err instanceof TransportError) {
      throw new ActionError(`${system}: no answer: ${err.message}`, 'transient', {
        ...(err.code ? { code: err.code } : {}),
      });
    }
    throw err;
  }
}
