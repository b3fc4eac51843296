// The `webhooks` section of the estate config: how outbound webhook subscriptions are delivered.
// Each subscription is its own delivery destination with this policy (its own circuit breaker,
// rate and concurrency), so one slow subscriber never holds back another.
import { z } from 'zod';

const int = (min: number, max?: number) =>
  max === undefined ? z.number().int().min(min) : z.number().int().min(min).max(max);

export const WebhooksConfigSchema = z.strictObject({
  /**
   * May subscribers register loopback and private-network URLs? Off by default (a subscriber
   * must not make Middlemart call into its own network); on for laptops and tests.
   */
  allowPrivateNetworks: z.boolean().default(false),
  timeoutMs: int(1, 120_000).default(10_000),
  ratePerSecond: z.number().positive().default(20),
  burst: int(1).default(20),
  concurrency: int(1, 256).default(4),
  maxAttempts: int(1, 100).default(12),
  baseDelayMs: int(0).default(1_000),
  maxDelayMs: int(0).default(3_600_000),
  /** How often a process re-reads subscriptions other processes created. */
  refreshSeconds: int(1, 3600).default(5),
});

export type WebhooksConfig = z.output<typeof WebhooksConfigSchema>;
