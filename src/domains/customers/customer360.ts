// Customer 360: the golden record plus what the systems around the customer know right now (CRM
// profile, loyalty standing, open invoices, recent orders). The sources are called in parallel,
// each with its own timeout; a source that fails or is slow is reported with its status and the
// rest is answered (partial, never an error).
import type {
  CustomerIdentity,
  CustomerSources,
  SourceCallContext,
} from '../../ports/customer-sources.js';

export const VIEW_SECTIONS = ['profile', 'loyalty', 'invoices', 'orders'] as const;
export type ViewSection = (typeof VIEW_SECTIONS)[number];

export type SourceState = 'ok' | 'not-found' | 'not-configured' | 'error' | 'timeout';

export interface SourceStatus {
  system: string | null;
  status: SourceState;
  latencyMs?: number;
  error?: string;
}

export interface Customer360Sections {
  profile?: unknown;
  loyalty?: unknown;
  invoices?: unknown;
  orders?: unknown;
}

export interface Customer360Options {
  sources: CustomerSources;
  timeoutMs: number;
  recentOrders: number;
  now?: () => number;
}

class SourceTimeout extends Error {}

export class Customer360 {
  constructor(private readonly opts: Customer360Options) {}

  /** The requested sections and the status of every source asked. */
  async view(
    identity: CustomerIdentity,
    sections: readonly ViewSection[],
  ): Promise<{
    sections: Customer360Sections;
    sources: Partial<Record<ViewSection, SourceStatus>>;
  }> {
    const { sources } = this.opts;
    const calls: Record<
      ViewSection,
      (() => undefined) | ((ctx: SourceCallContext) => Promise<unknown>)
    > = {
      profile: sources.crm ? (ctx) => sources.crm!.profile(identity, ctx) : () => undefined,
      loyalty: sources.loyalty
        ? (ctx) => sources.loyalty!.standing(identity, ctx)
        : () => undefined,
      invoices: sources.receivables
        ? (ctx) => sources.receivables!.openInvoices(identity, ctx)
        : () => undefined,
      orders: sources.orders
        ? (ctx) => sources.orders!.recentOrders(identity, this.opts.recentOrders, ctx)
        : () => undefined,
    };
    const systemOf: Record<ViewSection, string | undefined> = {
      profile: sources.crm?.system,
      loyalty: sources.loyalty?.system,
      invoices: sources.receivables?.system,
      orders: sources.orders?.system,
    };
    const results = await Promise.all(
      sections.map(async (section) => {
        const system = systemOf[section];
        if (system === undefined) {
          return [section, undefined, { system: null, status: 'not-configured' as const }] as const;
        }
        const started = (this.opts.now ?? Date.now)();
        const outcome = await this.call(
          calls[section] as (ctx: SourceCallContext) => Promise<unknown>,
        );
        const latencyMs = (this.opts.now ?? Date.now)() - started;
        if (outcome.ok) {
          const found = outcome.value !== undefined;
          return [
            section,
            outcome.value,
            { system, status: found ? ('ok' as const) : ('not-found' as const), latencyMs },
          ] as const;
        }
        return [
          section,
          undefined,
          { system, status: outcome.status, latencyMs, error: outcome.error },
        ] as const;
      }),
    );
    const out: Customer360Sections = {};
    const statuses: Partial<Record<ViewSection, SourceStatus>> = {};
    for (const [section, value, status] of results) {
      if (value !== undefined) out[section] = value;
      statuses[section] = status;
    }
    return { sections: out, sources: statuses };
  }

  private async call(
    fn: (ctx: SourceCallContext) => Promise<unknown>,
  ): Promise<
    { ok: true; value: unknown } | { ok: false; status: 'error' | 'timeout'; error: string }
  > {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new SourceTimeout(`no answer within ${this.opts.timeoutMs} ms`));
      }, this.opts.timeoutMs);
    });
    try {
      const value = await Promise.race([fn({ signal: controller.signal }), timeout]);
      return { ok: true, value };
    } catch (err) {
      if (err instanceof SourceTimeout) return { ok: false, status: 'timeout', error: err.message };
      return {
        ok: false,
        status: 'error',
        error: err instanceof Error ? err.message : String(err),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}
