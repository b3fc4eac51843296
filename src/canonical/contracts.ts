// The canonical model as published artefacts: JSON Schema (draft 2020-12) documents for every
// model, event data schema and the envelope, and an AsyncAPI 3.0 document of the catalogue.
// Everything here is deterministic: the same code yields byte-identical files.
import { z } from 'zod';
import { CloudEventEnvelope } from './envelope.js';
import { SCHEMA_BASE_URI, catalogue, modelSchemaId } from './events.js';
import { canonicalModels } from './models.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A generated artefact: its path below `schemas/` and its document. */
export interface ContractFile {
  readonly path: string;
  readonly document: JsonObject;
}

const DEFS_PREFIX = '#/$defs/';

/** Deep copy with object keys sorted, so serialisation is stable. */
export function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: JsonObject = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key] as Json);
    return out;
  }
  return value;
}

/** Pretty-printed, key-sorted JSON with a trailing newline. */
export function stableJson(value: Json): string {
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}

function rewriteRefs(value: Json, rewrite: (ref: string) => string): Json {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, rewrite));
  if (value !== null && typeof value === 'object') {
    const out: JsonObject = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = key === '$ref' && typeof v === 'string' ? rewrite(v) : rewriteRefs(v, rewrite);
    }
    return out;
  }
  return value;
}

function rawJsonSchema(schema: z.ZodType): JsonObject {
  return z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'output',
    unrepresentable: 'throw',
  }) as JsonObject;
}

/**
 * A self-contained JSON Schema document for `schema`: the root is the schema itself (not a
 * `$ref` into `$defs`), with `$id` and `title` set and shared parts under `$defs`.
 */
export function jsonSchemaDocument(
  schema: z.ZodType,
  meta: { id: string; title: string; description?: string },
): JsonObject {
  const raw = rawJsonSchema(schema);
  const defs: JsonObject = { ...((raw.$defs as JsonObject | undefined) ?? {}) };
  let root: JsonObject = raw;
  const rootRef = typeof raw.$ref === 'string' ? raw.$ref : undefined;
  if (rootRef?.startsWith(DEFS_PREFIX)) {
    const rootName = rootRef.slice(DEFS_PREFIX.length);
    const target = defs[rootName] as JsonObject;
    delete defs[rootName];
    const { $ref: _ref, $defs: _defs, ...rest } = raw;
    root = { ...target, ...rest };
    root = rewriteRefs(root, (r) => (r === rootRef ? '#' : r)) as JsonObject;
    for (const [k, v] of Object.entries(defs)) {
      defs[k] = rewriteRefs(v, (r) => (r === rootRef ? '#' : r));
    }
  }
  const { $defs: _unused, $schema: _schema, ...body } = root;
  const document: JsonObject = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: meta.id,
    ...body,
    title: meta.title,
  };
  if (meta.description !== undefined) document.description = meta.description;
  if (Object.keys(defs).length > 0) document.$defs = defs;
  return sortKeys(document) as JsonObject;
}

/** `json/<model>.v<n>.schema.json` for every canonical model. */
export function modelSchemaFiles(): ContractFile[] {
  return canonicalModels.map((m) => ({
    path: `json/${m.name}.v${m.version}.schema.json`,
    document: jsonSchemaDocument(m.schema, {
      id: modelSchemaId(m.name, m.version),
      title: m.title,
    }),
  }));
}

/** `json/events/<event>.v<n>.schema.json`: the data schema of every catalogue event. */
export function eventSchemaFiles(): ContractFile[] {
  return catalogue.map((e) => ({
    path: `json/events/${e.name}.v${e.version}.schema.json`,
    document: jsonSchemaDocument(e.data, {
      id: e.dataschema,
      title: `${e.name} v${e.version} data`,
      description: `${e.description} Priority class: ${e.priority}. Partition key: ${e.partitionKeyDoc}.`,
    }),
  }));
}

export const ENVELOPE_SCHEMA_ID = `${SCHEMA_BASE_URI}json/cloudevent.v1.schema.json`;

/** `json/cloudevent.v1.schema.json`: the envelope, with data left to the type's schema. */
export function envelopeSchemaFile(): ContractFile {
  return {
    path: 'json/cloudevent.v1.schema.json',
    document: jsonSchemaDocument(CloudEventEnvelope, {
      id: ENVELOPE_SCHEMA_ID,
      title: 'CloudEvent',
      description:
        'CloudEvents 1.0 structured JSON envelope with the Middlemart extensions traceparent, ' +
        'partitionkey, priority and idempotencykey.',
    }),
  };
}

const COMPONENTS_PREFIX = '#/components/schemas/';

/** Moves a schema's `$defs` into a shared components map; returns the root with refs rewritten. */
function hoistInto(components: JsonObject, raw: JsonObject): JsonObject {
  const toComponent = (r: string): string =>
    r.startsWith(DEFS_PREFIX) ? COMPONENTS_PREFIX + r.slice(DEFS_PREFIX.length) : r;
  const defs = (raw.$defs as JsonObject | undefined) ?? {};
  for (const [name, def] of Object.entries(defs)) {
    const rewritten = rewriteRefs(def, toComponent);
    const existing = components[name];
    if (existing !== undefined && stableJson(existing) !== stableJson(rewritten)) {
      throw new Error(`two different schemas share the id ${name}`);
    }
    components[name] = rewritten;
  }
  const { $defs: _defs, $schema: _schema, ...root } = raw;
  return rewriteRefs(root, toComponent) as JsonObject;
}

/** The AsyncAPI 3.0 document of the event catalogue. */
export function asyncApiDocument(version = '1.0.0'): JsonObject {
  const schemas: JsonObject = {};
  const envelope = hoistInto(schemas, rawJsonSchema(CloudEventEnvelope));
  const channels: JsonObject = {};
  const operations: JsonObject = {};
  const messages: JsonObject = {};
  for (const e of catalogue) {
    const key = `${e.name}.v${e.version}`;
    const data = hoistInto(schemas, rawJsonSchema(e.data));
    const ordering =
      `Priority class: \`${e.priority}\` (default; the estate may override it). ` +
      `Partition key: \`${e.partitionKeyDoc}\` — events with equal keys are processed in ` +
      'order, one at a time; the key travels in the `partitionkey` extension attribute.';
    messages[key] = {
      name: e.name,
      title: e.name,
      summary: e.description,
      description: ordering,
      contentType: 'application/cloudevents+json; charset=utf-8',
      payload: {
        allOf: [
          envelope,
          {
            type: 'object',
            properties: {
              type: { const: e.type },
              dataschema: { const: e.dataschema },
              priority: { enum: ['critical', 'standard', 'deferrable'], default: e.priority },
              data,
            },
            required: ['data', 'partitionkey', 'priority'],
          },
        ],
      },
      'x-middlemart-priority-class': e.priority,
      'x-middlemart-partition-key': e.partitionKeyDoc,
      'x-middlemart-event-version': e.version,
    };
    channels[key] = {
      address: e.type,
      title: e.name,
      description: `${e.description} ${ordering}`,
      messages: { [key]: { $ref: `#/components/messages/${key}` } },
    };
    operations[`publish.${key}`] = {
      action: 'send',
      summary: `Middlemart publishes ${e.name}.`,
      channel: { $ref: `#/channels/${key}` },
      messages: [{ $ref: `#/channels/${key}/messages/${key}` }],
    };
  }
  return sortKeys({
    asyncapi: '3.0.0',
    info: {
      title: 'Middlemart canonical events',
      version,
      description:
        'Every canonical event Middlemart accepts, queues and publishes, as CloudEvents 1.0 in ' +
        'structured JSON mode. Channel addresses are the CloudEvents types. Each message names ' +
        'its default priority class and the partition key that orders it. Versioning: within ' +
        'one version (the .v<n> suffix of the type) data only changes additively — new optional ' +
        'fields and new enum values may appear — so consumers ignore fields they do not know, ' +
        'tolerate enum values they do not know, and validate against the latest schema of the ' +
        'version; anything else is published as a new version.',
      license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
    },
    defaultContentType: 'application/cloudevents+json; charset=utf-8',
    channels,
    operations,
    components: { messages, schemas },
  }) as JsonObject;
}

/** Every generated artefact, keyed by path below `schemas/`, serialised. */
export function contractFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const f of [...modelSchemaFiles(), ...eventSchemaFiles(), envelopeSchemaFile()]) {
    files.set(f.path, stableJson(f.document));
  }
  files.set('asyncapi.json', stableJson(asyncApiDocument()));
  return new Map([...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
