// Calls of the e2e tests: JSON over HTTP to Middlemart's API or a sandbox simulator.
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON answers, read field by field in assertions */

export interface JsonAnswer {
  status: number;
  text: string;
  json: any;
}

/** One call; a body is sent as JSON, the answer parsed when it has one. */
export async function jsonCall(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonAnswer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? (JSON.parse(text) as unknown) : undefined };
}
