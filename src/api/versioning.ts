// Versioning (docs/api.md): every public route lives under `/v1`. A breaking change is a new
// `/v2` route beside the old one; the old one then answers with `Deprecation` (RFC 9745), `Sunset`
// (RFC 8594) and a `Link` to its successor until it is removed, no earlier than its sunset date.
import type { FastifyReply } from 'fastify';

export interface Deprecation {
  /** When the route was deprecated. */
  deprecatedAt: Date;
  /** When it may be removed (at least six months after `deprecatedAt`). */
  sunsetAt: Date;
  /** The route that replaces it, e.g. `/v2/orders`. */
  successor?: string;
}

/** The headers a deprecated route answers with. */
export function deprecationHeaders(d: Deprecation): Record<string, string> {
  const headers: Record<string, string> = {
    deprecation: `@${Math.floor(d.deprecatedAt.getTime() / 1000)}`,
    sunset: d.sunsetAt.toUTCString(),
  };
  if (d.successor) headers.link = `<${d.successor}>; rel="successor-version"`;
  return headers;
}

/** Marks an answer as coming from a deprecated route. */
export function markDeprecated(reply: FastifyReply, d: Deprecation): FastifyReply {
  for (const [name, value] of Object.entries(deprecationHeaders(d))) reply.header(name, value);
  return reply;
}

/**
 * An `onSend` hook for a deprecated route's options:
 * `{ onSend: deprecatedRoute({ deprecatedAt, sunsetAt, successor }) }`.
 */
export function deprecatedRoute(d: Deprecation) {
  const headers = deprecationHeaders(d);
  return async (_request: unknown, reply: FastifyReply, payload: unknown) => {
    for (const [name, value] of Object.entries(headers)) reply.header(name, value);
    return payload;
  };
}
