// Outbound webhook subscriptions: a subscriber (a channel's key, or an admin) registers a URL for
// canonical event types and receives each matching event signed per the Standard Webhooks spec.
// The signing secret is shown once, at creation. Storage goes through the SQL surface the Store
// and a handler transaction both offer; the tables are `WEBHOOK_MIGRATIONS` (versions 1100–1199).
import { randomBytes, randomUUID } from 'node:crypto';
import type { KeySql } from '../auth/api-keys.js';

export const WEBHOOK_MIGRATIONS = [
  {
    version: 1100,
    name: 'api: webhook subscriptions',
    sql: `
CREATE TABLE webhook_subscriptions (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  event_types TEXT NOT NULL,
  secret TEXT NOT NULL,
  description TEXT,
  region TEXT,
  owner TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  deleted_at BIGINT
);
CREATE INDEX webhook_subscriptions_live ON webhook_subscriptions (deleted_at)`,
  },
] as const;

export interface WebhookSubscription {
  id: string;
  url: string;
  /** Catalogue event names (`order.created`), or `*` for every event. */
  eventTypes: string[];
  description: string | null;
  /** Where the subscriber keeps data (for residency of customer events); null = unknown. */
  region: string | null;
  /** Key prefix (or JWT subject) that created it; a channel sees only its own. */
  owner: string;
  createdAt: string;
  deletedAt: string | null;
}

export interface StoredSubscription extends WebhookSubscription {
  /** `whsec_<base64>`: the Standard Webhooks signing secret. */
  secret: string;
}

/** The delivery destination of a subscription's events. */
export function webhookDestination(id: string): string {
  return `webhook.${id}`;
}

function toSubscription(r: Record<string, unknown>): StoredSubscription {
  return {
    id: String(r.id),
    url: String(r.url),
    eventTypes: JSON.parse(String(r.event_types)) as string[],
    secret: String(r.secret),
    description: r.description === null ? null : String(r.description),
    region: r.region === null ? null : String(r.region),
    owner: String(r.owner),
    createdAt: new Date(Number(r.created_at)).toISOString(),
    deletedAt: r.deleted_at === null ? null : new Date(Number(r.deleted_at)).toISOString(),
  };
}

/** The subscription as its owner may read it again: without the secret. */
export function publicView(s: StoredSubscription): WebhookSubscription {
  const { secret: _secret, ...rest } = s;
  return rest;
}

export async function createSubscription(
  db: KeySql,
  input: {
    url: string;
    eventTypes: string[];
    description?: string;
    region?: string;
    owner: string;
  },
  now: number = Date.now(),
): Promise<StoredSubscription> {
  const id = `whsub_${randomUUID().replaceAll('-', '')}`;
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  await db.execute(
    'INSERT INTO webhook_subscriptions (id, url, event_types, secret, description, region, owner, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    [
      id,
      input.url,
      JSON.stringify([...new Set(input.eventTypes)].sort()),
      secret,
      input.description ?? null,
      input.region ?? null,
      input.owner,
      now,
    ],
  );
  const [row] = await db.query('SELECT * FROM webhook_subscriptions WHERE id = ?', [id]);
  return toSubscription(row!);
}

/** Live subscriptions (all of them, or one owner's). */
export async function listSubscriptions(
  db: KeySql,
  opts: { owner?: string; includeDeleted?: boolean } = {},
): Promise<StoredSubscription[]> {
  const where: string[] = [];
  const params: string[] = [];
  if (!opts.includeDeleted) where.push('deleted_at IS NULL');
  if (opts.owner !== undefined) {
    where.push('owner = ?');
    params.push(opts.owner);
  }
  const rows = await db.query(
    `SELECT * FROM webhook_subscriptions${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`,
    params,
  );
  return rows.map(toSubscription);
}

export async function findSubscription(
  db: KeySql,
  id: string,
): Promise<StoredSubscription | undefined> {
  const [row] = await db.query('SELECT * FROM webhook_subscriptions WHERE id = ?', [id]);
  return row ? toSubscription(row) : undefined;
}

/** Marks a subscription deleted; true when it was live. */
export async function deleteSubscription(
  db: KeySql,
  id: string,
  now: number = Date.now(),
): Promise<boolean> {
  const done = await db.execute(
    'UPDATE webhook_subscriptions SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL',
    [now, id],
  );
  return done.changes === 1;
}
