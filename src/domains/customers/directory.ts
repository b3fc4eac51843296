// The customer directory: golden records over source records. Every incoming customer record is
// cross-referenced (system + source id → customer id); a record not yet known is blocked and
// scored against the stored identities (link → attach, review → new identity and a stewardship
// task, distinct → new identity) and the decision is stored with its per-field explanation.
// Survivorship builds the golden record; changes are announced as canonical events and sent to
// every system that holds the identity as `customer.sync` actions, never with an attribute that
// system owns. Personal data is sealed before it reaches a table (see pii.ts).
import { randomUUID } from 'node:crypto';
import {
  ConsentChangedV1,
  CustomerV1,
  makeEvent,
  type Consent,
  type SourceRef,
} from '../../canonical/index.js';
import type { ResolvedCustomer } from '../../ports/customers.js';
import type { SqlRunner } from '../../ports/sql.js';
import type { SystemAction } from '../../ports/system-actions.js';
import { PermanentError, type HandlerTx, type QueuedMessage } from '../../runtime/index.js';
import type {
  CustomerFields,
  MatchExplanation,
  Matcher,
  NormalisedCustomer,
} from './matching/contract.js';
import type { PiiVault } from './pii.js';
import {
  attributeOf,
  CUSTOMER_ATTRIBUTES,
  goldenProfile,
  matchFieldsOf,
  sourceRecordOf,
  survive,
  type AttributeProvenance,
  type CustomerAttribute,
  type GoldenAttributes,
  type SourceRecord,
  type SurvivorshipPolicy,
} from './survivorship.js';

/** The engine source of the domain's own announcements (its handlers skip them). */
export const CUSTOMERS_SOURCE = 'middlemart/customers';
/** CloudEvents `source` of the domain's announcements. */
export const CUSTOMERS_EVENT_SOURCE = '/middlemart/customers';
/** `datacontenttype` of an event whose `data` is sealed personal data: `{ sealed }`. */
export const SEALED_CONTENT_TYPE = 'application/vnd.middlemart.sealed+json';
/** Internal message: a steward decided a task (applied in the engine, in order). */
export const STEWARDSHIP_DECIDED_TYPE = 'com.middlemart.customer.stewardship-decided.v1';
/** Internal message: a steward undoes a merge. */
export const UNMERGE_REQUESTED_TYPE = 'com.middlemart.customer.unmerge-requested.v1';
/** The partition of stewardship work, so decisions apply one at a time. */
export const STEWARDSHIP_PARTITION = 'customer-stewardship';

/** The SQL surface the directory runs on: a handler's transaction or the store. */
export type CustomerSql = SqlRunner;

export interface CustomerDirectoryOptions {
  vault: PiiVault;
  matcher: Matcher;
  normalise(fields: CustomerFields): NormalisedCustomer;
  policy: SurvivorshipPolicy;
  defaultRegion: string;
  /** Systems that may receive `customer.sync` (those declared in the estate). */
  syncSystems: ReadonlySet<string>;
  /** Stored records compared per incoming record at most. */
  maxCandidates?: number;
  now(): number;
  newId?(): string;
}

export interface StewardshipDecision {
  taskId: string;
  decision: 'merge' | 'keep-apart';
  reason: string;
  actor: string;
}

export interface ConsentInput {
  purpose: Consent['purpose'];
  channel: Consent['channel'];
  status: Consent['status'];
  /** Epoch ms of the customer's decision. */
  at: number;
  source: string;
}

interface GoldenRow extends Record<string, unknown> {
  id: string;
  status: string;
  merged_into: string | null;
  provisional: number | string;
  profile_sealed: string | null;
  profile_digest: string | null;
  version: number | string;
  created_at: number | string;
  updated_at: number | string;
}

interface ConsentRow extends Record<string, unknown> {
  purpose: string;
  channel: string;
  status: string;
  changed_at: number | string;
  source: string;
  recorded_at: number | string;
}

/** The stored golden record as the directory keeps it (sealed in `profile_sealed`). */
export interface StoredGolden {
  profile: CustomerV1;
  provenance: Partial<Record<CustomerAttribute, AttributeProvenance>>;
  attributes: GoldenAttributes;
}

const n = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));

function pair(a: string, b: string): [string, string] {
  return a < b ? [a, b] : [b, a];
}

/** Is `payload` a CloudEvent whose data is sealed? Opens it, else returns the data as is. */
export function openEventData(vault: PiiVault, payload: unknown): unknown {
  if (payload === null || typeof payload !== 'object') return undefined;
  const p = payload as Record<string, unknown>;
  if (p.datacontenttype === SEALED_CONTENT_TYPE) {
    const d = p.data as { sealed?: unknown } | undefined;
    if (typeof d?.sealed !== 'string') throw new PermanentError('sealed event without sealed data');
    return vault.open(d.sealed);
  }
  return p.data;
}

/** The CloudEvent with its `data` sealed (what the domain stores in the engine). */
export function sealEvent(
  vault: PiiVault,
  event: Record<string, unknown>,
): Record<string, unknown> {
  const { data, dataschema: _schema, ...rest } = event;
  return { ...rest, datacontenttype: SEALED_CONTENT_TYPE, data: { sealed: vault.seal(data) } };
}

export class CustomerDirectory {
  readonly vault: PiiVault;
  private readonly opts: CustomerDirectoryOptions;
  private readonly newId: () => string;

  constructor(opts: CustomerDirectoryOptions) {
    this.opts = opts;
    this.vault = opts.vault;
    this.newId = opts.newId ?? (() => randomUUID());
  }

  // ---- engine handlers --------------------------------------------------------------------------

  /** `customer.created` / `customer.updated` from any source. */
  readonly onCustomerEvent = async (message: QueuedMessage, tx: HandlerTx): Promise<void> => {
    if (message.source === CUSTOMERS_SOURCE) return; // our own announcement
    const data = openEventData(this.vault, message.payload);
    const parsed = CustomerV1.safeParse(data);
    if (!parsed.success) {
      throw new PermanentError(
        `customer event is not a valid Customer.v1: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    const time = (message.payload as { time?: unknown }).time;
    const observed =
      parsed.data.updatedAt !== undefined
        ? Date.parse(parsed.data.updatedAt)
        : typeof time === 'string'
          ? Date.parse(time)
          : this.opts.now();
    await this.ingest(tx, parsed.data, Number.isFinite(observed) ? observed : this.opts.now());
  };

  /** `consent.changed` from any source. */
  readonly onConsentChanged = async (message: QueuedMessage, tx: HandlerTx): Promise<void> => {
    if (message.source === CUSTOMERS_SOURCE) return;
    const parsed = ConsentChangedV1.safeParse(openEventData(this.vault, message.payload));
    if (!parsed.success) throw new PermanentError('consent.changed data is not valid');
    const c = parsed.data;
    const customerId =
      (await this.currentId(tx, c.customerId)) ??
      (await this.customerOfSource(tx, c.source, c.customerId));
    if (!customerId) {
      throw new PermanentError(
        `consent.changed names customer ${c.customerId}, unknown as a customer id and as a ${c.source} source id; replay it once the customer is known`,
      );
    }
    const at = Date.parse(c.changedAt);
    const changed = await this.applyConsent(tx, customerId, {
      purpose: c.purpose,
      channel: c.channel,
      status: c.status,
      at,
      source: c.source,
    });
    if (changed.changed) await this.refresh(tx, customerId, {});
  };

  /** A steward's decision (accepted by the API, applied here in order). */
  readonly onStewardshipDecided = async (message: QueuedMessage, tx: HandlerTx): Promise<void> => {
    await this.applyDecision(tx, message.payload as StewardshipDecision);
  };

  /** A steward's request to undo a merge. */
  readonly onUnmergeRequested = async (message: QueuedMessage, tx: HandlerTx): Promise<void> => {
    const p = message.payload as { mergeId: string; actor: string; reason: string };
    await this.unmerge(tx, p.mergeId, p.actor, p.reason);
  };

  // ---- ingest -----------------------------------------------------------------------------------

  /**
   * Takes one system's version of a customer (its own id is `sourceIds[0]`) into the directory
   * and returns the golden id it belongs to.
   */
  async ingest(tx: HandlerTx, c: CustomerV1, observedAt: number): Promise<string> {
    const own = c.sourceIds[0]!;
    const record = sourceRecordOf(c, own, observedAt);
    const known: string[] = [];
    for (const ref of c.sourceIds) {
      const id = await this.customerOfSource(tx, ref.system, ref.id);
      if (id && !known.includes(id)) known.push(id);
    }
    let customerId: string;
    if (known.length > 0) {
      customerId = known[0]!;
      const previous = await this.readRecord(tx, own.system, own.id);
      if (previous && previous.observedAt > observedAt) {
        // An older version arriving late changes nothing.
        return customerId;
      }
      // Two identities named by one record's source ids: a steward decides.
      for (const other of known.slice(1)) {
        await this.proposePair(
          tx,
          customerId,
          other,
          { system: own.system, id: own.id },
          undefined,
          {
            score: 0,
            probability: 1,
            decision: 'review',
            rule: 'shared-source-id',
            fields: [],
          },
        );
      }
      await this.recordDecision(tx, own, customerId, customerId, 'xref', undefined);
    } else if (c.id && (await this.currentId(tx, c.id))) {
      customerId = (await this.currentId(tx, c.id))!;
      await this.recordDecision(tx, own, customerId, customerId, 'known-id', undefined);
    } else {
      customerId = await this.matchAndPlace(tx, record);
    }
    await this.writeRecord(tx, customerId, record);
    for (const ref of c.sourceIds.slice(1)) {
      if (!(await this.customerOfSource(tx, ref.system, ref.id))) {
        await this.writeRecord(tx, customerId, {
          system: ref.system,
          sourceId: ref.id,
          emails: [],
          phones: [],
          addresses: [],
          observedAt,
        });
      }
    }
    let consentChanged = false;
    for (const k of c.consents) {
      const r = await this.applyConsent(tx, customerId, {
        purpose: k.purpose,
        channel: k.channel,
        status: k.status,
        at: Date.parse(k.at),
        source: k.source ?? own.system,
      });
      consentChanged ||= r.changed;
    }
    await this.refresh(tx, customerId, { force: consentChanged });
    return customerId;
  }

  /**
   * Serialises placing new records (matching, new identities) across workers and processes: the
   * row lock is held to the end of the transaction, and statements after it see every identity
   * committed before (PostgreSQL read committed; SQLite transactions are serial anyway).
   */
  private async lockPlacement(tx: CustomerSql): Promise<void> {
    await tx.execute('UPDATE customer_identity_lock SET placements = placements + 1 WHERE id = 1');
  }

  private async matchAndPlace(tx: HandlerTx, record: SourceRecord): Promise<string> {
    await this.lockPlacement(tx);
    // A record placed by a concurrent transaction while this one waited is attached, not matched.
    const placed = await this.customerOfSource(tx, record.system, record.sourceId);
    if (placed) return placed;
    const incoming = this.opts.normalise(matchFieldsOf(record));
    const candidates = await this.candidates(tx, incoming);
    let best: { customerId: string; ref: SourceRef; explanation: MatchExplanation } | undefined;
    const byCustomer = new Map<string, { ref: SourceRef; explanation: MatchExplanation }>();
    for (const cand of candidates) {
      const explanation = this.opts.matcher.explain(incoming, cand.normalised);
      const prev = byCustomer.get(cand.customerId);
      if (!prev || rank(explanation) > rank(prev.explanation)) {
        byCustomer.set(cand.customerId, { ref: cand.ref, explanation });
      }
    }
    for (const [customerId, v] of byCustomer) {
      if (!best || rank(v.explanation) > rank(best.explanation)) best = { customerId, ...v };
    }
    const own = { system: record.system, id: record.sourceId };
    let customerId: string;
    if (best && best.explanation.decision === 'link') {
      customerId = best.customerId;
      await this.recordDecision(tx, own, customerId, best.customerId, 'link', best.explanation);
      // A provisional identity becomes a known customer when a real record links to it.
      await tx.execute('UPDATE customer_golden SET provisional = 0 WHERE id = ?', [customerId]);
    } else {
      customerId = await this.createGolden(tx, false);
      await this.recordDecision(
        tx,
        own,
        customerId,
        best?.customerId,
        best ? best.explanation.decision : 'distinct',
        best?.explanation,
      );
    }
    // Every other identity the record resembles enough is put to a steward.
    const others = [...byCustomer.entries()]
      .filter(([id, v]) => id !== customerId && v.explanation.decision !== 'distinct')
      .sort((a, b) => rank(b[1].explanation) - rank(a[1].explanation))
      .slice(0, 3);
    for (const [otherId, v] of others) {
      await this.proposePair(tx, otherId, customerId, v.ref, own, v.explanation);
    }
    return customerId;
  }

  /** Stored records sharing a blocking key with `incoming`, with their current customer. */
  private async candidates(
    tx: CustomerSql,
    incoming: NormalisedCustomer,
  ): Promise<Array<{ customerId: string; ref: SourceRef; normalised: NormalisedCustomer }>> {
    const keys = [...new Set(this.opts.matcher.blockingKeys(incoming))];
    if (keys.length === 0) return [];
    const digests = keys.map((k) => this.vault.blindIndex('block', k));
    const limit = this.opts.maxCandidates ?? 200;
    const rows = await tx.query<{
      system: string;
      source_id: string;
      customer_id: string;
      record_sealed: string;
    }>(
      `SELECT DISTINCT r.system, r.source_id, r.customer_id, r.record_sealed
         FROM customer_blind_keys b
         JOIN customer_source_records r ON r.system = b.system AND r.source_id = b.source_id
        WHERE b.kind = 'block' AND b.digest IN (${digests.map(() => '?').join(', ')})
        LIMIT ?`,
      [...digests, limit],
    );
    const out: Array<{ customerId: string; ref: SourceRef; normalised: NormalisedCustomer }> = [];
    for (const row of rows) {
      const customerId = await this.currentId(tx, row.customer_id);
      if (!customerId) continue;
      const rec = this.vault.open<SourceRecord>(row.record_sealed);
      out.push({
        customerId,
        ref: { system: row.system, id: row.source_id },
        normalised: this.opts.normalise(matchFieldsOf(rec)),
      });
    }
    return out;
  }

  private async recordDecision(
    tx: CustomerSql,
    own: SourceRef,
    customerId: string,
    candidateId: string | undefined,
    decision: string,
    explanation: MatchExplanation | undefined,
  ): Promise<void> {
    await tx.execute(
      `INSERT INTO customer_match_decisions
         (id, system, source_id, customer_id, candidate_id, decision, rule, score, probability, explanation, decided_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        this.newId(),
        own.system,
        own.id,
        customerId,
        candidateId ?? null,
        decision,
        explanation?.rule ?? null,
        explanation?.score ?? null,
        explanation?.probability ?? null,
        JSON.stringify(explanation?.fields ?? []),
        this.opts.now(),
      ],
    );
  }

  private async createGolden(tx: CustomerSql, provisional: boolean): Promise<string> {
    const id = `cus_${this.newId().replace(/-/g, '')}`;
    const now = this.opts.now();
    await tx.execute(
      `INSERT INTO customer_golden (id, status, merged_into, provisional, version, created_at, updated_at)
       VALUES (?, 'active', NULL, ?, 0, ?, ?)`,
      [id, provisional ? 1 : 0, now, now],
    );
    await this.history(tx, id, provisional ? 'created-provisional' : 'created', {});
    return id;
  }

  /** Stores (sealed) one source record under a customer and rewrites its blind keys. */
  private async writeRecord(tx: CustomerSql, customerId: string, rec: SourceRecord): Promise<void> {
    const sealed = this.vault.seal(rec);
    const now = this.opts.now();
    const moved = await tx.query<{ customer_id: string }>(
      'SELECT customer_id FROM customer_source_records WHERE system = ? AND source_id = ?',
      [rec.system, rec.sourceId],
    );
    if (moved.length > 0) {
      await tx.execute(
        `UPDATE customer_source_records SET record_sealed = ?, key_id = ?, observed_at = ?, received_at = ?
          WHERE system = ? AND source_id = ?`,
        [sealed, this.vault.keyId, rec.observedAt, now, rec.system, rec.sourceId],
      );
    } else {
      await tx.execute(
        `INSERT INTO customer_source_records (system, source_id, customer_id, record_sealed, key_id, observed_at, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [rec.system, rec.sourceId, customerId, sealed, this.vault.keyId, rec.observedAt, now],
      );
      await this.history(tx, customerId, 'source-linked', {
        system: rec.system,
        sourceId: rec.sourceId,
      });
    }
    await tx.execute('DELETE FROM customer_blind_keys WHERE system = ? AND source_id = ?', [
      rec.system,
      rec.sourceId,
    ]);
    const normalised = this.opts.normalise(matchFieldsOf(rec));
    const digests = new Map<string, string>();
    for (const k of this.opts.matcher.blockingKeys(normalised)) {
      digests.set(this.vault.blindIndex('block', k), 'block');
    }
    for (const e of rec.emails) {
      const ne = this.opts.normalise({ email: e.address }).email;
      if (ne) digests.set(this.vault.blindIndex('email', ne), 'email');
    }
    for (const [digest, kind] of digests) {
      await tx.execute(
        'INSERT INTO customer_blind_keys (digest, kind, system, source_id) VALUES (?, ?, ?, ?)',
        [digest, kind, rec.system, rec.sourceId],
      );
    }
  }

  private async readRecord(
    tx: CustomerSql,
    system: string,
    sourceId: string,
  ): Promise<SourceRecord | undefined> {
    const rows = await tx.query<{ record_sealed: string }>(
      'SELECT record_sealed FROM customer_source_records WHERE system = ? AND source_id = ?',
      [system, sourceId],
    );
    return rows[0] ? this.vault.open<SourceRecord>(rows[0].record_sealed) : undefined;
  }

  /** Every source record of a customer. */
  async recordsOf(tx: CustomerSql, customerId: string): Promise<SourceRecord[]> {
    const rows = await tx.query<{ record_sealed: string }>(
      'SELECT record_sealed FROM customer_source_records WHERE customer_id = ? ORDER BY system, source_id',
      [customerId],
    );
    return rows.map((r) => this.vault.open<SourceRecord>(r.record_sealed));
  }

  // ---- identities -------------------------------------------------------------------------------

  /** The active golden id `id` resolves to (following merges), or undefined when unknown. */
  async currentId(tx: CustomerSql, id: string): Promise<string | undefined> {
    let current = id;
    for (let hop = 0; hop < 32; hop++) {
      const rows = await tx.query<GoldenRow>(
        'SELECT id, status, merged_into FROM customer_golden WHERE id = ?',
        [current],
      );
      const row = rows[0];
      if (!row) return undefined;
      if (row.status !== 'merged' || !row.merged_into) return row.id;
      current = row.merged_into;
    }
    return undefined;
  }

  /** The current golden id of a source id. */
  async customerOfSource(
    tx: CustomerSql,
    system: string,
    sourceId: string,
  ): Promise<string | undefined> {
    const rows = await tx.query<{ customer_id: string }>(
      'SELECT customer_id FROM customer_source_records WHERE system = ? AND source_id = ?',
      [system, sourceId],
    );
    return rows[0] ? this.currentId(tx, rows[0].customer_id) : undefined;
  }

  /** Active customers holding this email (by blind index), most recently updated first. */
  async customersByEmail(tx: CustomerSql, email: string): Promise<string[]> {
    const ne = this.opts.normalise({ email }).email;
    if (!ne) return [];
    const rows = await tx.query<{ customer_id: string }>(
      `SELECT r.customer_id FROM customer_blind_keys b
         JOIN customer_source_records r ON r.system = b.system AND r.source_id = b.source_id
        WHERE b.kind = 'email' AND b.digest = ?
        ORDER BY r.received_at DESC`,
      [this.vault.blindIndex('email', ne)],
    );
    const out: string[] = [];
    for (const r of rows) {
      const id = await this.currentId(tx, r.customer_id);
      if (id && !out.includes(id)) out.push(id);
    }
    return out;
  }

  /** The stored golden record (opened), or undefined. */
  async golden(
    tx: CustomerSql,
    id: string,
  ): Promise<(StoredGolden & { provisional: boolean; version: number }) | undefined> {
    const rows = await tx.query<GoldenRow>('SELECT * FROM customer_golden WHERE id = ?', [id]);
    const row = rows[0];
    if (!row?.profile_sealed) return undefined;
    const stored = this.vault.open<StoredGolden>(row.profile_sealed);
    return { ...stored, provisional: n(row.provisional) === 1, version: n(row.version) };
  }

  async consentsOf(tx: CustomerSql, customerId: string): Promise<Consent[]> {
    const rows = await tx.query<ConsentRow>(
      'SELECT * FROM customer_consents WHERE customer_id = ? ORDER BY purpose, channel',
      [customerId],
    );
    return rows.map((r) => ({
      purpose: r.purpose as Consent['purpose'],
      channel: r.channel as Consent['channel'],
      status: r.status as Consent['status'],
      at: new Date(n(r.changed_at)).toISOString(),
      source: r.source,
    }));
  }

  // ---- golden record ----------------------------------------------------------------------------

  /**
   * Recomputes the golden record from its source records and consents; when it changed (or
   * `force`), stores it, announces it and syncs the systems holding the identity.
   */
  async refresh(
    tx: HandlerTx,
    customerId: string,
    opts: { force?: boolean; mergedFrom?: string[] },
  ): Promise<void> {
    const rows = await tx.query<GoldenRow>('SELECT * FROM customer_golden WHERE id = ?', [
      customerId,
    ]);
    const row = rows[0];
    if (!row || row.status !== 'active') return;
    const records = await this.recordsOf(tx, customerId);
    const consents = await this.consentsOf(tx, customerId);
    const { attributes, provenance } = survive(records, this.opts.policy);
    const now = this.opts.now();
    const comparable = {
      attributes,
      consents,
      refs: records.map((r) => `${r.system}/${r.sourceId}`),
    };
    const digest = this.vault.blindIndex('golden', JSON.stringify(comparable));
    if (digest === row.profile_digest && !opts.force) return;
    const version = n(row.version) + 1;
    const profile = goldenProfile({
      id: customerId,
      records,
      attributes,
      consents,
      defaultRegion: this.opts.defaultRegion,
      createdAt: n(row.created_at),
      updatedAt: now,
    });
    const stored: StoredGolden = { profile, provenance, attributes };
    await tx.execute(
      `UPDATE customer_golden SET profile_sealed = ?, key_id = ?, profile_digest = ?, version = ?, updated_at = ?
        WHERE id = ?`,
      [this.vault.seal(stored), this.vault.keyId, digest, version, now, customerId],
    );
    const name = version === 1 ? 'customer.created' : 'customer.updated';
    let event;
    try {
      event = makeEvent(name, profile, { source: CUSTOMERS_EVENT_SOURCE, time: new Date(now) });
    } catch (err) {
      throw new PermanentError(
        `golden record ${customerId} is not a valid Customer.v1: ${(err as Error).message}`,
      );
    }
    await tx.emit({
      type: event.type,
      partitionKey: customerId,
      payload: sealEvent(this.vault, event as unknown as Record<string, unknown>),
      source: CUSTOMERS_SOURCE,
    });
    await this.sync(tx, customerId, records, attributes, consents, opts.mergedFrom);
  }

  /**
   * `customer.sync` to every declared system holding the identity: the attributes it does not own
   * and does not already hold, and the consents it did not capture itself. A system is sent a
   * payload only when it differs from the last one it was sent (or on a merge).
   */
  private async sync(
    tx: HandlerTx,
    customerId: string,
    records: readonly SourceRecord[],
    attributes: GoldenAttributes,
    consents: readonly Consent[],
    mergedFrom: string[] | undefined,
  ): Promise<void> {
    const systems = [...new Set(records.map((r) => r.system))].filter((s) =>
      this.opts.syncSystems.has(s),
    );
    for (const system of systems) {
      const own = records.filter((r) => r.system === system);
      const attrs: Record<string, unknown> = {};
      for (const attr of CUSTOMER_ATTRIBUTES) {
        if (attr === 'region') continue;
        if (this.opts.policy.ownership[attr] === system) continue;
        const value = (attributes as Record<string, unknown>)[attr];
        if (value === undefined) continue;
        const json = JSON.stringify(value);
        if (own.some((r) => JSON.stringify(attributeOf(r, attr)) === json)) continue;
        attrs[attr] = value;
      }
      const theirConsents = consents
        .filter((k) => k.source !== system)
        .map((k) => ({ purpose: k.purpose, channel: k.channel, status: k.status, at: k.at }));
      if (Object.keys(attrs).length === 0 && theirConsents.length === 0 && !mergedFrom) continue;
      const digest = this.vault.blindIndex(
        'sync',
        JSON.stringify({ attrs, theirConsents, mergedFrom: mergedFrom ?? null }),
      );
      const prev = await tx.query<{ digest: string }>(
        'SELECT digest FROM customer_sync_state WHERE customer_id = ? AND system = ?',
        [customerId, system],
      );
      if (prev[0]?.digest === digest) continue;
      const region = (attributes as { region?: unknown }).region;
      const action: SystemAction = {
        action: 'customer.sync',
        correlation: { process: 'customer', id: customerId },
        // Personal data: refused to systems outside the customer's allowed regions.
        ...(typeof region === 'string' ? { pii: { customerRegion: region } } : {}),
        customerId,
        sourceId: own[0]!.sourceId,
        attributes: attrs,
        ...(theirConsents.length > 0 ? { consents: theirConsents } : {}),
        ...(mergedFrom ? { mergedFrom } : {}),
      };
      await tx.deliver({ destination: system, payload: action, personalData: true });
      if (prev.length > 0) {
        await tx.execute(
          'UPDATE customer_sync_state SET digest = ?, sent_at = ? WHERE customer_id = ? AND system = ?',
          [digest, this.opts.now(), customerId, system],
        );
      } else {
        await tx.execute(
          'INSERT INTO customer_sync_state (customer_id, system, digest, sent_at) VALUES (?, ?, ?, ?)',
          [customerId, system, digest, this.opts.now()],
        );
      }
    }
  }

  // ---- consent ----------------------------------------------------------------------------------

  /** Records a consent decision: the latest explicit decision wins. */
  async applyConsent(
    tx: HandlerTx,
    customerId: string,
    c: ConsentInput,
  ): Promise<{ changed: boolean; previous?: string }> {
    if (!Number.isFinite(c.at)) throw new PermanentError('consent time is not a valid time');
    const rows = await tx.query<ConsentRow>(
      'SELECT * FROM customer_consents WHERE customer_id = ? AND purpose = ? AND channel = ?',
      [customerId, c.purpose, c.channel],
    );
    const row = rows[0];
    if (row && n(row.changed_at) > c.at) return { changed: false, previous: row.status };
    if (row && n(row.changed_at) === c.at && row.status === c.status) {
      return { changed: false, previous: row.status };
    }
    const now = this.opts.now();
    if (row) {
      await tx.execute(
        `UPDATE customer_consents SET status = ?, changed_at = ?, source = ?, recorded_at = ?
          WHERE customer_id = ? AND purpose = ? AND channel = ?`,
        [c.status, c.at, c.source, now, customerId, c.purpose, c.channel],
      );
    } else {
      await tx.execute(
        `INSERT INTO customer_consents (customer_id, purpose, channel, status, changed_at, source, recorded_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [customerId, c.purpose, c.channel, c.status, c.at, c.source, now],
      );
    }
    await this.history(tx, customerId, 'consent', {
      purpose: c.purpose,
      channel: c.channel,
      status: c.status,
      previous: row?.status ?? null,
      source: c.source,
      at: new Date(c.at).toISOString(),
    });
    if (row?.status !== c.status) {
      const data = {
        customerId,
        purpose: c.purpose,
        channel: c.channel,
        status: c.status,
        ...(row ? { previousStatus: row.status as Consent['status'] } : {}),
        changedAt: new Date(c.at).toISOString(),
        source: c.source.slice(0, 64),
      };
      const event = makeEvent('consent.changed', data, {
        source: CUSTOMERS_EVENT_SOURCE,
        time: new Date(now),
      });
      await tx.emit({
        type: event.type,
        partitionKey: customerId,
        payload: event,
        source: CUSTOMERS_SOURCE,
      });
    }
    return row ? { changed: true, previous: row.status } : { changed: true };
  }

  // ---- stewardship ------------------------------------------------------------------------------

  /** Opens a stewardship task for two identities, unless kept apart or already proposed. */
  private async proposePair(
    tx: CustomerSql,
    customerA: string,
    customerB: string,
    recordA: SourceRef,
    recordB: SourceRef | undefined,
    explanation: MatchExplanation,
  ): Promise<void> {
    if (customerA === customerB) return;
    const [x, y] = pair(customerA, customerB);
    const apart = await tx.query(
      'SELECT 1 AS one FROM customer_keep_apart WHERE customer_a = ? AND customer_b = ?',
      [x, y],
    );
    if (apart.length > 0) return;
    const open = await tx.query(
      `SELECT 1 AS one FROM customer_stewardship_tasks
        WHERE status = 'open' AND ((customer_a = ? AND customer_b = ?) OR (customer_a = ? AND customer_b = ?))`,
      [customerA, customerB, customerB, customerA],
    );
    if (open.length > 0) return;
    const b = recordB ?? (await this.firstRecordRef(tx, customerB));
    if (!b) return;
    await tx.execute(
      `INSERT INTO customer_stewardship_tasks
        (id, status, customer_a, customer_b, record_a_system, record_a_id, record_b_system, record_b_id,
         score, probability, explanation, created_at)
       VALUES (?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        `task_${this.newId().replace(/-/g, '')}`,
        customerA,
        customerB,
        recordA.system,
        recordA.id,
        b.system,
        b.id,
        explanation.score,
        explanation.probability,
        JSON.stringify({
          fields: explanation.fields,
          rule: explanation.rule ?? null,
          decision: explanation.decision,
        }),
        this.opts.now(),
      ],
    );
  }

  private async firstRecordRef(
    tx: CustomerSql,
    customerId: string,
  ): Promise<SourceRef | undefined> {
    const rows = await tx.query<{ system: string; source_id: string }>(
      'SELECT system, source_id FROM customer_source_records WHERE customer_id = ? ORDER BY received_at LIMIT 1',
      [customerId],
    );
    return rows[0] ? { system: rows[0].system, id: rows[0].source_id } : undefined;
  }

  /** Applies a steward's decision; a task no longer open is left as it is. */
  async applyDecision(tx: HandlerTx, d: StewardshipDecision): Promise<void> {
    const rows = await tx.query<{ status: string; customer_a: string; customer_b: string }>(
      'SELECT status, customer_a, customer_b FROM customer_stewardship_tasks WHERE id = ?',
      [d.taskId],
    );
    const task = rows[0];
    if (!task || task.status !== 'open') return;
    const a = await this.currentId(tx, task.customer_a);
    const b = await this.currentId(tx, task.customer_b);
    const now = this.opts.now();
    let mergeId: string | null = null;
    let status: string;
    if (d.decision === 'merge') {
      if (a && b && a !== b)
        mergeId = await this.merge(tx, a, b, { by: d.actor, reason: d.reason });
      status = 'merged';
    } else {
      if (a && b && a !== b) {
        const [x, y] = pair(a, b);
        await tx.execute(
          `INSERT INTO customer_keep_apart (customer_a, customer_b, reason, decided_by, decided_at)
           VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer_a, customer_b) DO NOTHING`,
          [x, y, d.reason, d.actor, now],
        );
        await this.history(tx, a, 'kept-apart', { other: b, taskId: d.taskId });
        await this.history(tx, b, 'kept-apart', { other: a, taskId: d.taskId });
      }
      status = 'kept-apart';
    }
    await tx.execute(
      `UPDATE customer_stewardship_tasks SET status = ?, decision = ?, reason = ?, decided_by = ?, decided_at = ?, merge_id = ?
        WHERE id = ?`,
      [status, d.decision, d.reason, d.actor, now, mergeId, d.taskId],
    );
  }

  // ---- merge and unmerge ------------------------------------------------------------------------

  /**
   * Folds `mergedId` into `survivorId`: its source records move over, its consents combine (a
   * withdrawal on either side survives), the merge is kept with everything needed to undo it.
   */
  async merge(
    tx: HandlerTx,
    survivorId: string,
    mergedId: string,
    how: { by: string; reason: string },
  ): Promise<string> {
    const now = this.opts.now();
    const records = await tx.query<{ system: string; source_id: string }>(
      'SELECT system, source_id FROM customer_source_records WHERE customer_id = ?',
      [mergedId],
    );
    const survivorConsents = await this.consentsOf(tx, survivorId);
    const mergedConsents = await this.consentsOf(tx, mergedId);
    const mergeId = `mrg_${this.newId().replace(/-/g, '')}`;
    await tx.execute(
      `INSERT INTO customer_merges (id, survivor_id, merged_id, records, consents, reason, merged_by, merged_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        mergeId,
        survivorId,
        mergedId,
        JSON.stringify(records.map((r) => [r.system, r.source_id])),
        JSON.stringify({ survivor: survivorConsents, merged: mergedConsents }),
        how.reason,
        how.by,
        now,
      ],
    );
    await tx.execute('UPDATE customer_source_records SET customer_id = ? WHERE customer_id = ?', [
      survivorId,
      mergedId,
    ]);
    for (const m of mergedConsents) {
      const s = survivorConsents.find((k) => k.purpose === m.purpose && k.channel === m.channel);
      const winner = s ? consentOnMerge(s, m) : m;
      if (s && winner === s) continue;
      await tx.execute(
        'DELETE FROM customer_consents WHERE customer_id = ? AND purpose = ? AND channel = ?',
        [survivorId, m.purpose, m.channel],
      );
      await tx.execute(
        `INSERT INTO customer_consents (customer_id, purpose, channel, status, changed_at, source, recorded_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [
          survivorId,
          m.purpose,
          m.channel,
          winner.status,
          Date.parse(winner.at),
          winner.source ?? 'middlemart',
          now,
        ],
      );
    }
    await tx.execute(
      "UPDATE customer_golden SET status = 'merged', merged_into = ?, updated_at = ? WHERE id = ?",
      [survivorId, now, mergedId],
    );
    // Open tasks naming the merged identity now name the survivor.
    await tx.execute(
      'UPDATE customer_stewardship_tasks SET customer_a = ? WHERE customer_a = ? AND status = ?',
      [survivorId, mergedId, 'open'],
    );
    await tx.execute(
      'UPDATE customer_stewardship_tasks SET customer_b = ? WHERE customer_b = ? AND status = ?',
      [survivorId, mergedId, 'open'],
    );
    await tx.execute(
      "UPDATE customer_stewardship_tasks SET status = 'obsolete', decided_at = ? WHERE status = 'open' AND customer_a = customer_b",
      [now],
    );
    await this.history(tx, survivorId, 'merged', {
      mergeId,
      mergedId,
      by: how.by,
      reason: how.reason,
    });
    await this.history(tx, mergedId, 'merged-into', {
      mergeId,
      survivorId,
      by: how.by,
      reason: how.reason,
    });
    const event = makeEvent(
      'customer.merged',
      { survivorId, mergedIds: [mergedId], mergedAt: new Date(now).toISOString() },
      { source: CUSTOMERS_EVENT_SOURCE, time: new Date(now) },
    );
    await tx.emit({
      type: event.type,
      partitionKey: survivorId,
      payload: event,
      source: CUSTOMERS_SOURCE,
    });
    await this.refresh(tx, survivorId, { force: true, mergedFrom: [mergedId] });
    return mergeId;
  }

  /**
   * Undoes a merge: the merged identity comes back with the source records it brought, and its
   * consents as they were, plus every decision recorded since the merge (which applied to both).
   * The two are then kept apart.
   */
  async unmerge(tx: HandlerTx, mergeId: string, by: string, reason: string): Promise<boolean> {
    const rows = await tx.query<{
      survivor_id: string;
      merged_id: string;
      records: string;
      consents: string;
      merged_at: number | string;
      undone_at: number | string | null;
    }>('SELECT * FROM customer_merges WHERE id = ?', [mergeId]);
    const m = rows[0];
    if (!m || m.undone_at !== null) return false;
    const holder = (await this.currentId(tx, m.survivor_id)) ?? m.survivor_id;
    const now = this.opts.now();
    const mergedAt = n(m.merged_at);
    for (const [system, sourceId] of JSON.parse(m.records) as Array<[string, string]>) {
      await tx.execute(
        'UPDATE customer_source_records SET customer_id = ? WHERE system = ? AND source_id = ? AND customer_id = ?',
        [m.merged_id, system, sourceId, holder],
      );
    }
    const snapshot = JSON.parse(m.consents) as { survivor: Consent[]; merged: Consent[] };
    const current = await tx.query<ConsentRow & { customer_id: string }>(
      'SELECT * FROM customer_consents WHERE customer_id = ?',
      [holder],
    );
    const since = current.filter((r) => n(r.recorded_at) > mergedAt);
    const restore = async (customerId: string, base: Consent[]) => {
      await tx.execute('DELETE FROM customer_consents WHERE customer_id = ?', [customerId]);
      const merged = new Map<string, { status: string; at: number; source: string }>();
      for (const k of base) {
        merged.set(`${k.purpose}/${k.channel}`, {
          status: k.status,
          at: Date.parse(k.at),
          source: k.source ?? 'middlemart',
        });
      }
      for (const r of since) {
        merged.set(`${r.purpose}/${r.channel}`, {
          status: r.status,
          at: n(r.changed_at),
          source: r.source,
        });
      }
      for (const [key, v] of merged) {
        const [purpose, channel] = key.split('/');
        await tx.execute(
          `INSERT INTO customer_consents (customer_id, purpose, channel, status, changed_at, source, recorded_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
          [customerId, purpose!, channel!, v.status, v.at, v.source, now],
        );
      }
    };
    await restore(holder, snapshot.survivor);
    await restore(m.merged_id, snapshot.merged);
    await tx.execute(
      "UPDATE customer_golden SET status = 'active', merged_into = NULL, updated_at = ? WHERE id = ?",
      [now, m.merged_id],
    );
    await tx.execute('UPDATE customer_merges SET undone_at = ?, undone_by = ? WHERE id = ?', [
      now,
      by,
      mergeId,
    ]);
    const [x, y] = pair(holder, m.merged_id);
    await tx.execute(
      `INSERT INTO customer_keep_apart (customer_a, customer_b, reason, decided_by, decided_at)
       VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer_a, customer_b) DO NOTHING`,
      [x, y, `unmerged: ${reason}`, by, now],
    );
    await this.history(tx, holder, 'unmerged', { mergeId, restored: m.merged_id, by, reason });
    await this.history(tx, m.merged_id, 'unmerged', { mergeId, from: holder, by, reason });
    await this.refresh(tx, holder, { force: true });
    await this.refresh(tx, m.merged_id, { force: true });
    return true;
  }

  // ---- the order process's resolver ------------------------------------------------------------

  /**
   * Resolves a channel's customer reference to a golden id; creates a provisional identity,
   * flagged as such, when none is known (a later real record that matches it takes it over).
   */
  async resolve(
    tx: CustomerSql,
    ref: {
      customerId?: string;
      sourceRef?: SourceRef;
      email?: string;
      source: string;
      name?: string;
    },
  ): Promise<ResolvedCustomer> {
    const lookUp = async (): Promise<string | undefined> => {
      let found: string | undefined;
      if (ref.customerId) found = await this.currentId(tx, ref.customerId);
      if (!found && ref.sourceRef) {
        found = await this.customerOfSource(tx, ref.sourceRef.system, ref.sourceRef.id);
      }
      if (!found && ref.email) found = (await this.customersByEmail(tx, ref.email))[0];
      return found;
    };
    let id = await lookUp();
    if (!id) {
      // Another order may be creating the same guest right now: look again under the lock.
      await this.lockPlacement(tx);
      id = await lookUp();
    }
    let provisional = false;
    if (id) {
      const rows = await tx.query<GoldenRow>(
        'SELECT provisional FROM customer_golden WHERE id = ?',
        [id],
      );
      provisional = n(rows[0]?.provisional) === 1;
    } else {
      id = await this.createGolden(tx, true);
      provisional = true;
      const system = ref.sourceRef?.system ?? ref.source;
      const ne = ref.email ? this.opts.normalise({ email: ref.email }).email : undefined;
      const sourceId =
        ref.sourceRef?.id ??
        (ne ? `guest:${this.vault.blindIndex('guest', ne).slice(0, 32)}` : `guest:${id}`);
      const record: SourceRecord = {
        system,
        sourceId,
        emails: ref.email ? [{ address: ref.email, primary: true }] : [],
        phones: [],
        addresses: [],
        observedAt: this.opts.now(),
      };
      if (ref.name) {
        const parts = ref.name.trim().split(/\s+/);
        if (parts.length > 1) {
          record.givenName = parts.slice(0, -1).join(' ');
          record.familyName = parts[parts.length - 1]!;
        } else if (parts[0]) record.familyName = parts[0];
      }
      await this.writeRecord(tx, id, record);
      await this.recordDecision(
        tx,
        { system, id: sourceId },
        id,
        undefined,
        'provisional',
        undefined,
      );
    }
    const refs = await tx.query<{ system: string; source_id: string }>(
      'SELECT system, source_id FROM customer_source_records WHERE customer_id = ? ORDER BY received_at',
      [id],
    );
    const sourceIds: Record<string, string> = {};
    for (const r of refs) sourceIds[r.system] ??= r.source_id;
    const out: ResolvedCustomer = { customerId: id, provisional, sourceIds };
    const stored = await this.golden(tx, id);
    const email = stored?.attributes.email ?? ref.email;
    if (email) out.email = email;
    return out;
  }

  // ---- history ----------------------------------------------------------------------------------

  private async history(
    tx: CustomerSql,
    customerId: string,
    kind: string,
    detail: Record<string, unknown>,
  ): Promise<void> {
    await tx.execute(
      'INSERT INTO customer_history (customer_id, kind, detail, at) VALUES (?, ?, ?, ?)',
      [customerId, kind, JSON.stringify(detail), this.opts.now()],
    );
  }
}

/** Orders explanations: a deterministic rule first, then the score. */
function rank(e: MatchExplanation): number {
  return (e.rule ? 1e6 : 0) + e.score;
}

/** On a merge a withdrawal on either side survives; otherwise the latest decision wins. */
export function consentOnMerge(a: Consent, b: Consent): Consent {
  const aw = a.status === 'withdrawn';
  const bw = b.status === 'withdrawn';
  if (aw !== bw) return aw ? a : b;
  return Date.parse(b.at) > Date.parse(a.at) ? b : a;
}
