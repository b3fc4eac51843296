// Crash safety: engine processes are killed with SIGKILL at random moments and restarted; in the
// end every message whose accept resolved was applied at the destination exactly once in effect
// (one delivery idempotency key per message; retried attempts of that key are allowed).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { BACKENDS, type TestDatabase } from '../store/backends.js';
import { sleep, startStub, waitFor, type StubDestination } from './support.js';

const CHILD = resolve('test/runtime/fixtures/crash-child.ts');
const KILLS = 10;

interface Child {
  proc: ChildProcess;
  ready: Promise<void>;
  /** Resolves when the child has accepted its whole range (or exited). */
  allAccepted: Promise<void>;
  exited: Promise<void>;
}

function spawnChild(
  db: TestDatabase,
  stub: StubDestination,
  accepted: Set<string>,
  opts: { role: 'all' | 'worker'; start: number; count: number },
): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: {
      ...process.env,
      CRASH_DB_URL: db.url,
      ...(db.schema ? { CRASH_SCHEMA: db.schema } : {}),
      CRASH_STUB_URL: stub.url,
      CRASH_ROLE: opts.role,
      CRASH_START: String(opts.start),
      CRASH_COUNT: String(opts.count),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buf = '';
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  let onAll!: () => void;
  const allAccepted = new Promise<void>((r) => (onAll = r));
  proc.stdout!.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'READY') onReady();
      else if (line === 'ACCEPTED-ALL') onAll();
      else if (line.startsWith('A ')) accepted.add(line.slice(2));
    }
  });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<void>((r) =>
    proc.on('exit', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL' && stderr) console.error(stderr.slice(-2000));
      onReady();
      onAll();
      r();
    }),
  );
  return { proc, ready, allAccepted, exited };
}

async function kill(child: Child): Promise<void> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  await child.exited;
}

function checkExactlyOnce(stub: StubDestination, accepted: Set<string>): void {
  const keysByJob = new Map<string, Set<string>>();
  for (const [idemKey, body] of stub.applied) {
    const job = (body as { key: string }).key;
    (keysByJob.get(job) ?? keysByJob.set(job, new Set()).get(job)!).add(idemKey);
  }
  const lost = [...accepted].filter((k) => !keysByJob.has(k));
  assert.deepEqual(lost, [], 'accepted messages never applied');
  const doubled = [...keysByJob].filter(([, keys]) => keys.size !== 1);
  assert.deepEqual(doubled, [], 'messages applied under more than one delivery key');
}

function drained(stub: StubDestination, accepted: Set<string>): boolean {
  const applied = new Set([...stub.applied.values()].map((b) => (b as { key: string }).key));
  return [...accepted].every((k) => applied.has(k));
}

for (const backend of BACKENDS) {
  describe(`crash safety: ${backend.name}`, { skip: backend.skip }, () => {
    test(`${KILLS} SIGKILLs during accept and processing lose nothing and apply nothing twice`, async () => {
      const db = await backend.create();
      (await db.open()).close().catch(() => undefined);
      const stub = await startStub();
      const accepted = new Set<string>();
      try {
        for (let round = 0; round < KILLS; round++) {
          const child = spawnChild(db, stub, accepted, {
            role: 'all',
            start: round * 10_000,
            count: 400,
          });
          await child.ready;
          await sleep(50 + Math.random() * 350);
          await kill(child);
        }
        const final = spawnChild(db, stub, accepted, { role: 'all', start: 1_000_000, count: 50 });
        await final.allAccepted;
        await waitFor('backlog drained', () => drained(stub, accepted), 30_000, 50);
        await kill(final);
        assert.ok(accepted.size > KILLS, `accepted ${accepted.size}`);
        checkExactlyOnce(stub, accepted);
        console.log(
          `# ${backend.name}: ${accepted.size} accepted, ${stub.applied.size} applied, ${stub.attempts.length} attempts`,
        );
      } finally {
        await stub.close();
        await db.drop();
      }
    });

    if (backend.name === 'postgres') {
      test('two worker processes, one killed again and again', async () => {
        const db = await backend.create();
        (await db.open()).close().catch(() => undefined);
        const stub = await startStub();
        const accepted = new Set<string>();
        let worker = spawnChild(db, stub, accepted, { role: 'worker', start: 0, count: 0 });
        try {
          await worker.ready;
          const producer = spawnChild(db, stub, accepted, { role: 'all', start: 0, count: 3000 });
          await producer.ready;
          for (let round = 0; round < KILLS; round++) {
            await sleep(100 + Math.random() * 300);
            if (round % 2 === 0) {
              await kill(worker);
              worker = spawnChild(db, stub, accepted, { role: 'worker', start: 0, count: 0 });
              await worker.ready;
            } else {
              await kill(worker);
              worker = spawnChild(db, stub, accepted, { role: 'worker', start: 0, count: 0 });
            }
          }
          // Stop accepting, then let the surviving worker drain what was accepted.
          await kill(producer);
          await waitFor(
            'backlog drained',
            () => drained(stub, accepted) && accepted.size > 0,
            30_000,
            50,
          );
          checkExactlyOnce(stub, accepted);
          console.log(
            `# postgres two workers: ${accepted.size} accepted, ${stub.applied.size} applied, ${stub.attempts.length} attempts`,
          );
        } finally {
          await kill(worker);
          await stub.close();
          await db.drop();
        }
      });
    }
  });
}
