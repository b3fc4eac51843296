// W3C Trace Context (https://www.w3.org/TR/trace-context/) `traceparent`: parse, validate,
// generate, and derive a child span. One trace id travels from a channel's request through every
// queue hop and outbound call; each hop gets its own parent (span) id.
import { randomBytes } from 'node:crypto';

export interface TraceContext {
  /** Always `00` for what we generate; other versions are parsed by their first four fields. */
  version: string;
  /** 32 lowercase hex characters, not all zeros. */
  traceId: string;
  /** 16 lowercase hex characters, not all zeros: the span id of the caller. */
  parentId: string;
  /** 2 lowercase hex characters; bit 0 is `sampled`. */
  flags: string;
}

const VERSION_00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
// Future versions: the same first four fields, then optionally more after a dash.
const FUTURE_VERSION = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_PARENT_ID = '0'.repeat(16);

/**
 * Parses a `traceparent` header value. Returns undefined when it is not valid: wrong shape,
 * uppercase hex, version `ff`, an all-zero trace or parent id. Per the spec a receiver then starts
 * a new trace.
 */
export function parseTraceparent(value: string | undefined | null): TraceContext | undefined {
  if (typeof value !== 'string') return undefined;
  const header = value.trim();
  let version: string;
  let traceId: string;
  let parentId: string;
  let flags: string;
  const v00 = VERSION_00.exec(header);
  if (v00) {
    version = '00';
    [, traceId, parentId, flags] = v00 as unknown as [string, string, string, string];
  } else {
    const future = FUTURE_VERSION.exec(header);
    // A version-00 header with trailing data is invalid; only higher versions may extend it.
    if (!future || future[1] === '00' || future[1] === 'ff') return undefined;
    [, version, traceId, parentId, flags] = future as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
  }
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_PARENT_ID) return undefined;
  return { version, traceId, parentId, flags };
}

/** True when the value is a valid `traceparent`. */
export function isValidTraceparent(value: string | undefined | null): boolean {
  return parseTraceparent(value) !== undefined;
}

/** Renders a context as a version-00 `traceparent`. */
export function formatTraceparent(
  ctx: Pick<TraceContext, 'traceId' | 'parentId' | 'flags'>,
): string {
  return `00-${ctx.traceId}-${ctx.parentId}-${ctx.flags}`;
}

function randomHex(bytes: number, zero: string): string {
  for (;;) {
    const hex = randomBytes(bytes).toString('hex');
    if (hex !== zero) return hex;
  }
}

/** A new random trace id (32 hex, never all zeros). */
export function newTraceId(): string {
  return randomHex(16, ZERO_TRACE_ID);
}

/** A new random span id (16 hex, never all zeros). */
export function newSpanId(): string {
  return randomHex(8, ZERO_PARENT_ID);
}

/** Starts a new trace: a fresh trace id and span id, sampled. */
export function newTraceparent(sampled = true): string {
  return formatTraceparent({
    traceId: newTraceId(),
    parentId: newSpanId(),
    flags: sampled ? '01' : '00',
  });
}

/**
 * The traceparent of a new span under `parent`: same trace id and flags, a new span id, always
 * written as version 00. An invalid parent starts a new trace instead.
 */
export function childTraceparent(parent: string | TraceContext | undefined | null): string {
  const ctx = typeof parent === 'string' || parent == null ? parseTraceparent(parent) : parent;
  if (!ctx) return newTraceparent();
  // Only the sampled bit is defined for version 00; other bits are not propagated.
  const sampled = (parseInt(ctx.flags, 16) & 0x01) === 1;
  return formatTraceparent({
    traceId: ctx.traceId,
    parentId: newSpanId(),
    flags: sampled ? '01' : '00',
  });
}

/** The trace id of a valid traceparent, else undefined. */
export function traceIdOf(traceparent: string | undefined | null): string | undefined {
  return parseTraceparent(traceparent)?.traceId;
}
