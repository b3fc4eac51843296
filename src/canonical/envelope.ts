// The CloudEvents 1.0 envelope in structured JSON mode, with Middlemart's extension attributes:
// `traceparent` (W3C Trace Context), `partitionkey`, `priority` and `idempotencykey`.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  PRIORITY_CLASSES,
  catalogue,
  eventByName,
  eventByType,
  type CatalogueEntry,
  type EventData,
  type EventEntry,
  type EventName,
  type PriorityClass,
} from './events.js';
import {
  CanonicalValidationError,
  toValidationIssues,
  type ValidationIssue,
  type ValidationResult,
} from './issues.js';
import { Timestamp } from './primitives.js';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * True for a valid W3C Trace Context `traceparent`: version-traceid-parentid-flags, lowercase
 * hex, trace and parent ids not all zero, version not ff; version 00 has nothing after flags.
 */
export function isTraceparent(value: string): boolean {
  const m = TRACEPARENT.exec(value);
  if (!m) return false;
  const [, version, traceId, parentId, , rest] = m;
  if (version === 'ff') return false;
  if (version === '00' && rest !== undefined) return false;
  if (/^0+$/.test(traceId ?? '') || /^0+$/.test(parentId ?? '')) return false;
  return true;
}

/** True for an RFC 3986 URI-reference (absolute URI or relative reference) without spaces. */
export function isUriReference(value: string): boolean {
  if (value.length === 0 || /\s/.test(value)) return false;
  for (const ch of value) {
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) return false;
  }
  return URL.canParse(value, 'http://base.invalid/');
}

/** Names CloudEvents allows for attributes: lowercase ASCII letters and digits. */
const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/;

const CORE_ATTRIBUTES = new Set([
  'specversion',
  'id',
  'source',
  'type',
  'subject',
  'time',
  'datacontenttype',
  'dataschema',
  'data',
  'data_base64',
  'traceparent',
  'tracestate',
  'partitionkey',
  'priority',
  'idempotencykey',
]);

export const Traceparent = z
  .string()
  .refine(
    isTraceparent,
    'expected a W3C traceparent: 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>',
  )
  .meta({ id: 'Traceparent', description: 'W3C Trace Context traceparent header value.' });

/** The envelope without its data, which is checked against the catalogue's schema for its type. */
export const CloudEventEnvelope = z
  .looseObject({
    specversion: z.literal('1.0').describe('CloudEvents specification version.'),
    id: z.string().min(1).max(256).describe('Event id; unique per source (Middlemart uses UUIDs).'),
    source: z
      .string()
      .refine(isUriReference, 'expected a URI-reference such as /middlemart/api or urn:erp:a')
      .describe('URI-reference of the context that produced the event.'),
    type: z
      .string()
      .min(1)
      .describe('Event type from the catalogue, e.g. com.middlemart.order.created.v1.'),
    subject: z.string().min(1).max(512).optional().describe('The entity the event is about.'),
    time: Timestamp.describe('When the occurrence happened (RFC 3339 UTC).'),
    datacontenttype: z
      .literal('application/json')
      .optional()
      .describe('Media type of data; always application/json.'),
    dataschema: z
      .string()
      .refine((s) => URL.canParse(s), 'expected an absolute URI')
      .optional()
      .describe('URI of the JSON Schema the data follows.'),
    data: z.unknown().describe('The event payload, per the catalogue schema of the type.'),
    traceparent: Traceparent.optional(),
    tracestate: z.string().max(512).optional().describe('W3C Trace Context tracestate.'),
    partitionkey: z
      .string()
      .min(1)
      .max(512)
      .optional()
      .describe('Ordering key: events with equal keys are processed in order, one at a time.'),
    priority: z
      .enum(PRIORITY_CLASSES)
      .optional()
      .describe('Priority class: critical, standard or deferrable.'),
    idempotencykey: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe('Key under which the producer may retry without duplicating the effect.'),
  })
  .superRefine((e, ctx) => {
    if (!('data' in e)) {
      ctx.addIssue({ code: 'custom', path: ['data'], message: 'data is required' });
    }
    for (const [name, value] of Object.entries(e)) {
      if (CORE_ATTRIBUTES.has(name)) continue;
      if (!ATTRIBUTE_NAME.test(name)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: 'extension attribute names are 1–20 lowercase letters or digits',
        });
      } else if (!['string', 'number', 'boolean'].includes(typeof value)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: 'extension attribute values are strings, integers or booleans',
        });
      }
    }
  })
  .meta({
    id: 'CloudEvent.v1',
    title: 'CloudEvent',
    description: 'CloudEvents 1.0 structured JSON envelope with Middlemart extensions.',
  });

/** A canonical event: CloudEvents 1.0 envelope around typed data. */
export interface CloudEvent<Type extends string = string, Data = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: Type;
  subject?: string;
  time: string;
  datacontenttype: 'application/json';
  dataschema?: string;
  data: Data;
  traceparent?: string;
  tracestate?: string;
  partitionkey: string;
  priority: PriorityClass;
  idempotencykey?: string;
  /** Further CloudEvents extension attributes. */
  [extension: string]: unknown;
}

/** The event of catalogue name `N`, e.g. `EventOf<'order.created'>`. */
export type EventOf<N extends EventName> = CloudEvent<EventEntry<N>['type'], EventData<N>>;

/** Any event of the catalogue, discriminated by `type`. */
export type CanonicalEvent = { [N in EventName]: EventOf<N> }[EventName];

/**
 * Validates a structured-mode CloudEvent (object or JSON text): the envelope, then its data
 * against the catalogue schema of its type. Returns the typed event (with `partitionkey` and
 * `priority` defaulted from the catalogue) or every issue, each naming its field path.
 */
export function parseEvent(json: unknown): ValidationResult<CanonicalEvent> {
  let input = json;
  if (typeof json === 'string') {
    try {
      input = JSON.parse(json) as unknown;
    } catch (err) {
      return {
        ok: false,
        issues: [
          { path: '', message: `not JSON: ${(err as Error).message}`, code: 'invalid_json' },
        ],
      };
    }
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return {
      ok: false,
      issues: [{ path: '', message: 'a CloudEvent is a JSON object', code: 'invalid_type' }],
    };
  }

  const issues: ValidationIssue[] = [];
  const envelope = CloudEventEnvelope.safeParse(input);
  if (!envelope.success) issues.push(...toValidationIssues(envelope.error.issues));

  const raw = input as Record<string, unknown>;
  const entry = typeof raw.type === 'string' ? eventByType(raw.type) : undefined;
  if (typeof raw.type === 'string' && !entry) {
    issues.push({
      path: 'type',
      message: `unknown event type ${raw.type}; known types: ${catalogue.map((e) => e.type).join(', ')}`,
      code: 'unknown_type',
    });
  }
  let data: unknown;
  let partitionkey: string | undefined;
  if (entry && 'data' in raw) {
    const parsed = entry.data.safeParse(raw.data);
    if (parsed.success) {
      data = parsed.data;
      partitionkey = (entry.partitionKey as (d: unknown) => string)(data);
      if (typeof raw.partitionkey === 'string' && raw.partitionkey !== partitionkey) {
        issues.push({
          path: 'partitionkey',
          message: `partitionkey ${raw.partitionkey} differs from ${partitionkey}, the key ${entry.name} is ordered by (${entry.partitionKeyDoc})`,
          code: 'custom',
        });
      }
    } else {
      issues.push(...toValidationIssues(parsed.error.issues, ['data']));
    }
  }
  if (issues.length > 0 || !envelope.success || !entry || partitionkey === undefined) {
    return { ok: false, issues };
  }
  const event = {
    ...envelope.data,
    datacontenttype: 'application/json',
    data,
    partitionkey,
    priority: envelope.data.priority ?? entry.priority,
  } as CanonicalEvent;
  return { ok: true, value: event };
}

export interface MakeEventOptions {
  /** CloudEvents `source`: URI-reference of the producer, e.g. `/middlemart/api`. */
  source: string;
  /** Defaults to the catalogue's subject of the data (order id, sku@location …). */
  subject?: string;
  /** Defaults to a random UUID. */
  id?: string;
  /** Defaults to now. */
  time?: Date | string;
  traceparent?: string;
  tracestate?: string;
  idempotencyKey?: string;
  /** Overrides the catalogue's default priority class (configured priority overrides). */
  priority?: PriorityClass;
  /** Include `dataschema` (the data's JSON Schema URI); default true. */
  includeDataSchema?: boolean;
}

/**
 * Builds a complete, validated envelope for catalogue event `name` around `data`.
 * Throws CanonicalValidationError (paths such as `data.lines[0].quantity`) when invalid.
 */
export function makeEvent<N extends EventName>(
  name: N,
  data: EventData<N>,
  opts: MakeEventOptions,
): EventOf<N> {
  const entry: CatalogueEntry | undefined = eventByName(name as string);
  if (!entry) throw new Error(`unknown event ${String(name)}`);
  const parsed = entry.data.safeParse(data);
  if (!parsed.success) {
    throw new CanonicalValidationError(
      `${entry.name} data`,
      toValidationIssues(parsed.error.issues, ['data']),
    );
  }
  const value = parsed.data;
  const event: CloudEvent = {
    specversion: '1.0',
    id: opts.id ?? randomUUID(),
    source: opts.source,
    type: entry.type,
    subject: opts.subject ?? (entry.subject as (d: unknown) => string)(value),
    time: toUtc(opts.time ?? new Date()),
    datacontenttype: 'application/json',
    ...(opts.includeDataSchema === false ? {} : { dataschema: entry.dataschema }),
    data: value,
    ...(opts.traceparent === undefined ? {} : { traceparent: opts.traceparent }),
    ...(opts.tracestate === undefined ? {} : { tracestate: opts.tracestate }),
    partitionkey: (entry.partitionKey as (d: unknown) => string)(value),
    priority: opts.priority ?? entry.priority,
    ...(opts.idempotencyKey === undefined ? {} : { idempotencykey: opts.idempotencyKey }),
  };
  const check = CloudEventEnvelope.safeParse(event);
  if (!check.success) {
    throw new CanonicalValidationError(
      `${entry.name} event`,
      toValidationIssues(check.error.issues),
    );
  }
  return event as EventOf<N>;
}

function toUtc(time: Date | string): string {
  if (typeof time === 'string') return time;
  if (Number.isNaN(time.getTime())) throw new RangeError('invalid time');
  return time.toISOString();
}
