// Middlemart as tests start it: the real composition root on an ephemeral loopback port.
import { join } from 'node:path';
import { startApp, type App, type AppOptions } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';

/** Client rate limits far above what any test sends: tests are about what is taken, not how fast. */
export const NO_RATE_LIMITS = {
  standard: { requestsPerSecond: 100_000 },
  premium: { requestsPerSecond: 100_000 },
} as const;

/**
 * Starts Middlemart for a test: port 0, silent logs and NO_RATE_LIMITS unless given, and the
 * store `storeUrl` or else SQLite in `dir`.
 */
export function startQuietApp(
  opts: Omit<AppOptions, 'port' | 'storeUrl'> & { dir: string; storeUrl?: string },
): Promise<App> {
  const { dir, storeUrl, ...rest } = opts;
  return startApp({
    logger: createLogger({ level: 'silent' }),
    rateTiers: NO_RATE_LIMITS,
    ...rest,
    port: 0,
    storeUrl: storeUrl ?? `sqlite:${join(dir, 'mm.db')}`,
  });
}
