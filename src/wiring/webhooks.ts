// Outbound webhooks: every canonical event a subscription asked for becomes a delivery in the
// same transaction as the event's processing (an observer), to the subscription's own
// destination, signed per the Standard Webhooks spec when it is sent. Deliveries ride the engine:
// retries with backoff, a circuit per subscriber, dead letters and replay.
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'undici';
import { Webhook } from 'standardwebhooks';
import { Counter } from 'prom-client';
import { eventByType } from '../canonical/index.js';
import { residencyRefusal } from '../config/sections/residency.js';
import type { WebhooksConfig } from '../config/sections/webhooks.js';
import { webhookSubscriptionRoutes } from '../api/v1/webhook-subscriptions.js';
import {
  WEBHOOK_MIGRATIONS,
  listSubscriptions,
  webhookDestination,
  type StoredSubscription,
} from '../api/webhooks/subscriptions.js';
import type { DestinationPolicy } from '../runtime/delivery/index.js';
import type { OutboundDelivery, Sender } from '../runtime/index.js';
import type { FeatureModule } from './module.js';
import { destinationPolicies } from './policies.js';

/** The Standard Webhooks message id of a delivery: stable across retries and replays. */
export function webhookMessageId(idempotencyKey: string): string {
  return `msg_${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}`;
}

/** The headers of one signed attempt (`webhook-id`, `webhook-timestamp`, `webhook-signature`). */
export function signedHeaders(
  secret: string,
  msgId: string,
  body: string,
  at: Date,
): Record<string, string> {
  const signature = new Webhook(secret).sign(msgId, at, body);
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signature,
  };
}

function policyOf(id: string, c: WebhooksConfig): DestinationPolicy {
  return {
    id: webhookDestination(id),
    timeoutMs: c.timeoutMs,
    retry: { maxAttempts: c.maxAttempts, baseDelayMs: c.baseDelayMs, maxDelayMs: c.maxDelayMs },
    circuitBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 30_000 },
    concurrency: { max: c.concurrency, adaptive: false },
    rate: { perSecond: c.ratePerSecond, burst: c.burst },
  };
}

/** A customer event's residency region (personal data), or undefined for other events. */
function customerRegionOf(payload: unknown): string | undefined {
  if (payload === null || typeof payload !== 'object') return undefined;
  const event = payload as { type?: unknown; data?: unknown };
  if (typeof event.type !== 'string' || !/\.(customer|consent)\./.test(event.type)) {
    return undefined;
  }
  const data = event.data as { region?: unknown } | undefined;
  return typeof data?.region === 'string' ? data.region : undefined;
}

export const webhooksModule: FeatureModule = {
  name: 'webhooks',
  migrations: () => WEBHOOK_MIGRATIONS,
  async start(ctx) {
    const settings = ctx.config.webhooks;
    const basePolicies = destinationPolicies(ctx.config.systems);
    let subscriptions: StoredSubscription[] = [];
    const byId = new Map<string, StoredSubscription>();
    const registered = new Set<string>();
    const residencyRefusals = new Counter({
      name: 'middlemart_webhook_residency_refusals_total',
      help: "Webhook deliveries refused because the subscriber's region may not hold the customer's data",
      registers: [ctx.metrics.registry],
    });

    const sender =
      (id: string): Sender =>
      async (delivery: OutboundDelivery, { signal }) => {
        const sub = byId.get(id);
        if (!sub) {
          return { status: 410, body: { detail: `webhook subscription ${id} was deleted` } };
        }
        const region = customerRegionOf(delivery.payload);
        if (region !== undefined) {
          const refusal = residencyRefusal(ctx.config.residency, region, {
            id: sub.id,
            region: sub.region ?? undefined,
          });
          if (refusal) {
            residencyRefusals.inc();
            return { status: 451, body: { detail: refusal } };
          }
        }
        const body = JSON.stringify(delivery.payload);
        const headers = {
          'content-type': 'application/json',
          'user-agent': 'middlemart-webhooks',
          ...(delivery.traceparent ? { traceparent: delivery.traceparent } : {}),
          ...signedHeaders(
            sub.secret,
            webhookMessageId(delivery.idempotencyKey),
            body,
            new Date(ctx.now()),
          ),
        };
        const res = await httpRequest(sub.url, { method: 'POST', headers, body, signal });
        const text = await res.body.text();
        const retryAfter = res.headers['retry-after'];
        return {
          status: res.statusCode,
          ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
          body: text.slice(0, 500),
        };
      };

    const refresh = async (): Promise<void> => {
      // Deleted subscriptions keep their destination (deliveries already queued for them are
      // answered 410 by the sender and dead-lettered) but get no new events.
      const all = await listSubscriptions(ctx.store, { includeDeleted: true });
      subscriptions = all.filter((s) => s.deletedAt === null);
      byId.clear();
      for (const s of subscriptions) byId.set(s.id, s);
      ctx.gate.updatePolicies([...basePolicies, ...all.map((s) => policyOf(s.id, settings))]);
      for (const s of all) {
        if (registered.has(s.id)) continue;
        ctx.engine.registerSender(webhookDestination(s.id), sender(s.id));
        registered.add(s.id);
      }
    };
    await refresh();

    ctx.observe(async (message, tx) => {
      if (subscriptions.length === 0) return;
      const name = eventByType(message.type)?.name;
      if (!name) return;
      for (const sub of subscriptions) {
        if (!sub.eventTypes.includes('*') && !sub.eventTypes.includes(name)) continue;
        await tx.deliver({
          destination: webhookDestination(sub.id),
          payload: message.payload,
          idempotencyKey: `${message.id}/webhook/${sub.id}`,
        });
      }
    });

    let timer: NodeJS.Timeout | undefined;
    return {
      routes: [
        webhookSubscriptionRoutes({
          db: ctx.store,
          allowPrivateNetworks: settings.allowPrivateNetworks,
          changed: refresh,
          now: ctx.now,
        }),
      ],
      startBackground() {
        timer = setInterval(() => {
          refresh().catch((err: unknown) =>
            ctx.logger.warn({ err }, 'webhook subscriptions: refresh failed'),
          );
        }, settings.refreshSeconds * 1000);
        timer.unref();
      },
      async stop() {
        if (timer) clearInterval(timer);
      },
    };
  },
};
