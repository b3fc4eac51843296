// OpenTelemetry tracing. Every hop of a transaction is a span of one trace: the HTTP request that
// accepted it (server), each handler run (consumer), each delivery attempt (client). The W3C
// `traceparent` is the carrier between hops: accepted on ingress, stored with every queued message
// and delivery, sent on every outbound call. Spans are exported over OTLP/HTTP when
// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; without it no
// span is recorded and hops only derive child `traceparent`s, so ids stay the same either way.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  AlwaysOnSampler,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { MessageHandler, Sender } from '../runtime/types.js';
import { childTraceparent, formatTraceparent, parseTraceparent } from './trace-context.js';

export type HopKind = 'server' | 'consumer' | 'client' | 'internal';

/** A started hop: its own `traceparent` (to hand on) and how to end it. */
export interface Hop {
  readonly traceparent: string;
  setAttributes(attributes: Attributes): void;
  /** Ends the span; with `error`, marks it failed. */
  end(error?: string): void;
}

export interface Tracing {
  readonly enabled: boolean;
  /** Starts a hop under `parent` (a traceparent; none or invalid starts a new trace). */
  start(name: string, kind: HopKind, parent: string | undefined, attributes?: Attributes): Hop;
  /** Exports what is buffered. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  serviceName?: string;
  serviceVersion?: string;
  /** Environment to read the OTLP endpoint from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Export to this exporter instead (tests), span by span. */
  exporter?: SpanExporter;
}

const KINDS: Record<HopKind, SpanKind> = {
  server: SpanKind.SERVER,
  consumer: SpanKind.CONSUMER,
  client: SpanKind.CLIENT,
  internal: SpanKind.INTERNAL,
};

/** Derives child traceparents only: tracing without export. */
export const NO_TRACING: Tracing = {
  enabled: false,
  start: (_name, _kind, parent) => ({
    traceparent: childTraceparent(parent),
    setAttributes: () => undefined,
    end: () => undefined,
  }),
  flush: async () => undefined,
  shutdown: async () => undefined,
};

function parentContext(parent: string | undefined) {
  const ctx = parseTraceparent(parent);
  if (!ctx) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: ctx.traceId,
    spanId: ctx.parentId,
    traceFlags: (parseInt(ctx.flags, 16) & 1) === 1 ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}

function hopOf(span: Span): Hop {
  const sc = span.spanContext();
  return {
    traceparent: formatTraceparent({
      traceId: sc.traceId,
      parentId: sc.spanId,
      flags: (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00',
    }),
    setAttributes: (attributes) => void span.setAttributes(attributes),
    end: (error) => {
      if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
      span.end();
    },
  };
}

/**
 * Tracing for this process: exporting when an OTLP endpoint is configured (or an exporter is
 * given), else `NO_TRACING`. The provider is not registered globally, so several apps in one
 * process (tests) keep their spans apart.
 */
export function createTracing(opts: TracingOptions = {}): Tracing {
  const env = opts.env ?? process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!opts.exporter && !endpoint) return NO_TRACING;
  const processor = opts.exporter
    ? new SimpleSpanProcessor(opts.exporter)
    : new BatchSpanProcessor(
        new OTLPTraceExporter(
          env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
            ? { url: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT }
            : { url: `${String(endpoint).replace(/\/+$/, '')}/v1/traces` },
        ),
      );
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME ?? opts.serviceName ?? 'middlemart',
      ...(opts.serviceVersion ? { [ATTR_SERVICE_VERSION]: opts.serviceVersion } : {}),
    }),
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [processor],
  });
  const tracer: Tracer = provider.getTracer('middlemart', opts.serviceVersion);
  return {
    enabled: true,
    start(name, kind, parent, attributes) {
      const span = tracer.startSpan(
        name,
        { kind: KINDS[kind], ...(attributes ? { attributes } : {}) },
        parentContext(parent),
      );
      return hopOf(span);
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** A handler whose every run is a consumer span under the message's traceparent. */
export function tracedHandler(
  tracing: Tracing,
  type: string,
  handler: MessageHandler,
): MessageHandler {
  if (!tracing.enabled) return handler;
  return async (message, tx) => {
    const hop = tracing.start(`process ${type}`, 'consumer', message.traceparent, {
      'messaging.system': 'middlemart',
      'messaging.operation.type': 'process',
      'messaging.message.id': message.id,
      'messaging.destination.name': message.partitionKey,
      'middlemart.message.type': type,
      'middlemart.attempt': message.attempt,
    });
    try {
      await handler({ ...message, traceparent: hop.traceparent }, tx);
      hop.end();
    } catch (err) {
      hop.end(err instanceof Error ? err.message : String(err));
      throw err;
    }
  };
}

/**
 * A sender whose every attempt is a client span under the delivery's traceparent; the sender
 * sends the span's own traceparent on, so the receiving system's spans are its children.
 */
export function tracedSender(tracing: Tracing, destination: string, sender: Sender): Sender {
  if (!tracing.enabled) return sender;
  return async (delivery, ctx) => {
    const hop = tracing.start(`deliver ${destination}`, 'client', delivery.traceparent, {
      'middlemart.delivery.id': delivery.id,
      'middlemart.destination': destination,
      'middlemart.attempt': ctx.attempt,
    });
    try {
      const response = await sender({ ...delivery, traceparent: hop.traceparent }, ctx);
      hop.setAttributes({ 'http.response.status_code': response.status });
      hop.end(response.status >= 400 ? `status ${response.status}` : undefined);
      return response;
    } catch (err) {
      hop.end(err instanceof Error ? err.message : String(err));
      throw err;
    }
  };
}
