// Fault injection for sandbox simulators: pure decision logic with an injected random source and
// clock, so every fault kind is reproducible from a seed. The HTTP side (hook, socket destroy,
// truncated bodies) lives in kit.ts; this module only decides what should happen to a request.
import { z } from 'zod';

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

/** Fields every fault kind may carry: where it applies and for how long. */
const scope = {
  /** Only requests whose path starts with this prefix (e.g. `/api/v1/sales-orders`). */
  route: z.string().startsWith('/').optional(),
  /** Only requests with this HTTP method. */
  method: z
    .string()
    .transform((m) => m.toUpperCase())
    .pipe(z.enum(HTTP_METHODS))
    .optional(),
  /** The fault removes itself this many milliseconds after it was injected (or started). */
  durationMs: z.number().int().positive().optional(),
};

export const latencyFaultSchema = z
  .object({
    kind: z.literal('latency'),
    distribution: z.enum(['fixed', 'uniform', 'exponential']),
    /** fixed: the delay; uniform: the lower bound; exponential: the mean. */
    ms: z.number().int().min(0).max(600_000),
    /** uniform: the upper bound (required); exponential: a cap (default 10 × ms). */
    maxMs: z.number().int().min(0).max(600_000).optional(),
    /** Share of matching requests that are delayed (default 1). */
    rate: z.number().min(0).max(1).default(1),
    ...scope,
  })
  .superRefine((f, ctx) => {
    if (f.distribution === 'uniform' && f.maxMs === undefined) {
      ctx.addIssue({ code: 'custom', path: ['maxMs'], message: 'uniform latency needs maxMs' });
    }
    if (f.maxMs !== undefined && f.maxMs < f.ms) {
      ctx.addIssue({ code: 'custom', path: ['maxMs'], message: 'maxMs must be >= ms' });
    }
  });

export const errorRateFaultSchema = z.object({
  kind: z.literal('errorRate'),
  rate: z.number().min(0).max(1),
  status: z.number().int().min(400).max(599).default(500),
  ...scope,
});

export const rateLimitStormFaultSchema = z.object({
  kind: z.literal('rateLimitStorm'),
  rate: z.number().min(0).max(1),
  retryAfterSeconds: z.number().int().min(0).max(3600).default(1),
  ...scope,
});

export const outageFaultSchema = z.object({
  kind: z.literal('outage'),
  ...scope,
  /** How long the outage lasts (required: an outage always ends by itself). */
  durationMs: z.number().int().positive(),
  /** Delay before the outage begins (default 0: immediately). */
  startInMs: z.number().int().min(0).default(0),
});

export const malformedFaultSchema = z.object({
  kind: z.literal('malformed'),
  rate: z.number().min(0).max(1),
  ...scope,
});

export const faultSpecSchema = z.discriminatedUnion('kind', [
  latencyFaultSchema,
  errorRateFaultSchema,
  rateLimitStormFaultSchema,
  outageFaultSchema,
  malformedFaultSchema,
]);

/** Body of `POST /_sandbox/faults`: one fault, an array of faults, or `{ faults: [...] }`. */
export const faultRequestSchema = z.union([
  faultSpecSchema.transform((f) => [f]),
  z.array(faultSpecSchema).min(1),
  z.object({ faults: z.array(faultSpecSchema).min(1) }).transform((b) => b.faults),
]);

/** A fault as parsed (defaults applied). */
export type FaultSpec = z.output<typeof faultSpecSchema>;
/** A fault as a caller may write it (defaults optional). */
export type FaultSpecInput = z.input<typeof faultSpecSchema>;
export type FaultKind = FaultSpec['kind'];

export type ActiveFault = FaultSpec & {
  id: string;
  /** Epoch ms at which the fault was injected. */
  injectedAt: number;
  /** Epoch ms from which the fault applies. */
  startsAt: number;
  /** Epoch ms at which the fault expires, if it has a window. */
  expiresAt?: number;
};

export type FaultOutcome =
  | { type: 'pass' }
  | { type: 'error'; status: number }
  | { type: 'rateLimit'; retryAfterSeconds: number }
  | { type: 'outage' }
  | { type: 'malformed' };

export interface FaultDecision {
  /** Milliseconds to wait before the outcome (sum of matching latency faults). */
  delayMs: number;
  outcome: FaultOutcome;
  /** Ids of the faults that fired for this request. */
  firedFaultIds: string[];
}

export interface FieldError {
  path: string;
  message: string;
}

export type ParseFaultsResult =
  { ok: true; faults: FaultSpec[] } | { ok: false; errors: FieldError[] };

/** Validates a `POST /_sandbox/faults` body, reporting each failing field by path. */
export function parseFaultRequest(body: unknown): ParseFaultsResult {
  const parsed = faultRequestSchema.safeParse(body);
  if (parsed.success) return { ok: true, faults: parsed.data };
  return { ok: false, errors: zodFieldErrors(parsed.error, body) };
}

/**
 * Flattens a Zod error into field errors. A union failure reports the issues of the most
 * plausible branch (the one matching the body's shape) rather than one opaque union message.
 */
function zodFieldErrors(error: z.ZodError, body: unknown): FieldError[] {
  const issues: FieldError[] = [];
  const visit = (list: readonly z.core.$ZodIssue[], prefix: PropertyKey[]): void => {
    for (const issue of list) {
      const path = [...prefix, ...issue.path];
      if (issue.code === 'invalid_union' && issue.errors.length > 0) {
        const branch = pickUnionBranch(issue.errors, body);
        visit(branch, path);
      } else {
        issues.push({ path: formatPath(path), message: issue.message });
      }
    }
  };
  visit(error.issues, []);
  return issues;
}

function pickUnionBranch(
  branches: readonly (readonly z.core.$ZodIssue[])[],
  body: unknown,
): readonly z.core.$ZodIssue[] {
  // Branch order in faultRequestSchema: single fault, array, { faults }.
  const index = Array.isArray(body)
    ? 1
    : typeof body === 'object' && body !== null && 'faults' in body
      ? 2
      : 0;
  return branches[index] ?? branches[0] ?? [];
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(body)' : out;
}

export interface FaultInjectorOptions {
  random?: () => number;
  now?: () => number;
}

/**
 * Holds the active faults of one simulator and decides, per request, which of them fire.
 *
 * Precedence when several match: outage, then rateLimitStorm, then errorRate, then malformed
 * (the first that fires wins); latency faults add up and apply before any outcome.
 */
export class FaultInjector {
  private readonly random: () => number;
  private readonly now: () => number;
  private faults: ActiveFault[] = [];
  private sequence = 0;

  constructor(opts: FaultInjectorOptions = {}) {
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  /** Adds a fault (validated); throws on an invalid spec. */
  inject(spec: FaultSpecInput): ActiveFault {
    const parsed = faultSpecSchema.parse(spec);
    const injectedAt = this.now();
    const startsAt = parsed.kind === 'outage' ? injectedAt + parsed.startInMs : injectedAt;
    this.sequence += 1;
    const fault: ActiveFault = {
      ...parsed,
      id: `fault-${this.sequence}`,
      injectedAt,
      startsAt,
      ...(parsed.durationMs !== undefined ? { expiresAt: startsAt + parsed.durationMs } : {}),
    };
    this.faults.push(fault);
    return fault;
  }

  remove(id: string): boolean {
    const before = this.faults.length;
    this.faults = this.faults.filter((f) => f.id !== id);
    return this.faults.length !== before;
  }

  clear(): void {
    this.faults = [];
  }

  /** Faults not yet expired (including outages scheduled to start later). */
  active(): ActiveFault[] {
    this.expire();
    return this.faults.map((f) => ({ ...f }));
  }

  /** Decides what happens to a request for `path` (query string ignored) with `method`. */
  decide(path: string, method: string): FaultDecision {
    this.expire();
    const now = this.now();
    const upper = method.toUpperCase();
    const pathOnly = path.split('?')[0] ?? path;
    const matching = this.faults.filter(
      (f) =>
        f.startsAt <= now &&
        (f.route === undefined || pathOnly.startsWith(f.route)) &&
        (f.method === undefined || f.method === upper),
    );

    const fired: string[] = [];
    let delayMs = 0;
    for (const f of matching) {
      if (f.kind !== 'latency') continue;
      if (f.rate < 1 && this.random() >= f.rate) continue;
      delayMs += this.latencyOf(f);
      fired.push(f.id);
    }

    const order: FaultKind[] = ['outage', 'rateLimitStorm', 'errorRate', 'malformed'];
    for (const kind of order) {
      for (const f of matching) {
        if (f.kind !== kind) continue;
        const outcome = this.fire(f);
        if (outcome !== undefined) {
          fired.push(f.id);
          return { delayMs, outcome, firedFaultIds: fired };
        }
      }
    }
    return { delayMs, outcome: { type: 'pass' }, firedFaultIds: fired };
  }

  private fire(f: ActiveFault): FaultOutcome | undefined {
    switch (f.kind) {
      case 'outage':
        return { type: 'outage' };
      case 'rateLimitStorm':
        return this.random() < f.rate
          ? { type: 'rateLimit', retryAfterSeconds: f.retryAfterSeconds }
          : undefined;
      case 'errorRate':
        return this.random() < f.rate ? { type: 'error', status: f.status } : undefined;
      case 'malformed':
        return this.random() < f.rate ? { type: 'malformed' } : undefined;
      case 'latency':
        return undefined;
    }
  }

  private latencyOf(f: Extract<ActiveFault, { kind: 'latency' }>): number {
    switch (f.distribution) {
      case 'fixed':
        return f.ms;
      case 'uniform': {
        const max = f.maxMs ?? f.ms;
        return Math.round(f.ms + this.random() * (max - f.ms));
      }
      case 'exponential': {
        const cap = f.maxMs ?? f.ms * 10;
        const u = this.random();
        return Math.min(cap, Math.round(-Math.log(1 - Math.min(u, 0.999999)) * f.ms));
      }
    }
  }

  private expire(): void {
    const now = this.now();
    this.faults = this.faults.filter((f) => f.expiresAt === undefined || f.expiresAt > now);
  }
}
