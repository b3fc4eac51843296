// The refusal path of system actions (src/wiring/actions.ts): a performer that fails permanently
// (the system refused the action, or a residency rule did) has a refusal message accepted for the
// asking process, keyed `refused/<idempotency key>` and partitioned by the correlation id, before
// the 422 that dead-letters the delivery; transient failures and successes send none; the
// refusal router dispatches by process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErpError } from '../../src/ports/erp.js';
import {
  ActionError,
  SYSTEM_ACKNOWLEDGED_TYPE,
  SYSTEM_REFUSED_TYPE,
  type ActionPerformer,
  type SystemAction,
  type SystemRefusal,
} from '../../src/ports/system-actions.js';
import type { AcceptRequest, HandlerTx, QueuedMessage, Sender } from '../../src/runtime/index.js';

type Delivery = Parameters<Sender>[0];
import { ActionRegistry, RefusalRouter, actionSender } from '../../src/wiring/actions.js';

const action: SystemAction = {
  action: 'erp.post-sales-order',
  correlation: { process: 'order', id: 'ord-1' },
  pii: { customerRegion: 'eu' },
  order: {
    externalReference: 'ord-1',
    currency: 'EUR',
    orderDate: '2026-11-28T09:00:00Z',
    lines: [{ sku: 'MM-00001', quantity: 1, unitPriceMinor: 100 }],
  },
};

function delivery(): Delivery {
  return {
    id: 'del-1',
    destination: 'cloud-erp',
    payload: action,
    priority: 'critical',
    idempotencyKey: 'order/ord-1/erp',
    traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01',
  } as unknown as Delivery;
}

function capture() {
  const accepted: AcceptRequest[] = [];
  const engine = {
    accept: async (req: AcceptRequest) => {
      accepted.push(req);
      return { outcome: 'accepted' } as never;
    },
  };
  return { accepted, engine };
}

const ctx = {
  signal: new AbortController().signal,
  idempotencyKey: 'order/ord-1/erp',
  attempt: 1,
};

async function send(perform: ActionPerformer) {
  const { accepted, engine } = capture();
  const sender = actionSender(engine, 'cloud-erp', perform, () =>
    Date.parse('2026-11-28T10:00:00Z'),
  );
  const answer = await sender(delivery(), ctx as never);
  return { answer, accepted };
}

void test('a permanent ERP refusal is reported to the process, then dead-lettered (422)', async () => {
  const { answer, accepted } = await send(async () => {
    throw new ErpError('cloud-erp: Customer is on credit hold', 'permanent', {
      status: 400,
      code: 'USER_ERROR',
    });
  });
  assert.equal(answer.status, 422);
  assert.equal(accepted.length, 1);
  const req = accepted[0]!;
  assert.equal(req.type, SYSTEM_REFUSED_TYPE);
  assert.equal(req.idempotencyKey, 'refused/order/ord-1/erp');
  assert.equal(req.requestHash, 'refused/order/ord-1/erp');
  assert.equal(req.partitionKey, 'ord-1');
  assert.equal(req.priority, 'critical');
  assert.equal(req.traceparent, delivery().traceparent);
  // The action names a customer region (it carries personal data): sealed at rest like it.
  assert.equal(req.personalData, true);
  const refusal = req.payload as SystemRefusal;
  assert.deepEqual(refusal, {
    action: 'erp.post-sales-order',
    correlation: { process: 'order', id: 'ord-1' },
    destination: 'cloud-erp',
    deliveryId: 'del-1',
    idempotencyKey: 'order/ord-1/erp',
    at: '2026-11-28T10:00:00.000Z',
    reason: 'cloud-erp: Customer is on credit hold',
    code: 'USER_ERROR',
    status: 400,
  });
});

void test('transient failures retry without a refusal; success acknowledges', async () => {
  const transient = await send(async () => {
    throw new ErpError('cloud-erp: HTTP 503', 'transient', { status: 503 });
  });
  assert.equal(transient.answer.status, 503);
  assert.equal(transient.accepted.length, 0);
  const ok = await send(async () => ({ erpOrderId: '1', state: 'booked', duplicate: false }));
  assert.equal(ok.answer.status, 200);
  assert.deepEqual(
    ok.accepted.map((a) => [a.type, a.personalData]),
    [[SYSTEM_ACKNOWLEDGED_TYPE, true]],
  );
});

void test('a residency refusal goes the same way, with code residency', async () => {
  const { accepted, engine } = capture();
  const senders = new Map<string, (d: Delivery, c: never) => Promise<{ status: number }>>();
  const registry = new ActionRegistry();
  registry.register('cloud-erp', 'erp.post-sales-order', async () => ({ erpOrderId: '1' }));
  registry.registerSenders(
    {
      accept: engine.accept,
      registerSender: (destination: string, sender: never) => senders.set(destination, sender),
    } as never,
    { residency: () => 'customers of region eu may not be held in us' },
  );
  const answer = await senders.get('cloud-erp')!(delivery(), ctx as never);
  assert.equal(answer.status, 422);
  assert.equal(accepted.length, 1);
  const refusal = accepted[0]!.payload as SystemRefusal;
  assert.equal(refusal.code, 'residency');
  assert.match(refusal.reason, /may not be held/);
});

void test('an action error from a fan-out system is a refusal too; the router dispatches by process', async () => {
  const { accepted } = await send(async () => {
    throw new ActionError('loyalty: member not found', 'permanent', { code: 'member_not_found' });
  });
  assert.equal(accepted.length, 1);
  const router = new RefusalRouter();
  const seen: string[] = [];
  router.on('order', async (r) => void seen.push(`order:${r.correlation.id}`));
  assert.throws(() => router.on('order', async () => undefined), /already have a handler/);
  const message = (payload: unknown) => ({ payload }) as unknown as QueuedMessage;
  await router.handler(message(accepted[0]!.payload), {} as HandlerTx);
  await router.handler(
    message({ ...(accepted[0]!.payload as object), correlation: { process: 'price', id: 'p' } }),
    {} as HandlerTx,
  );
  assert.deepEqual(seen, ['order:ord-1']);
});
