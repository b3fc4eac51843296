// Inventory tests open the engine's test databases (SQLite file, PostgreSQL schema) and apply
// the inventory migrations the way the composition root does.
import type { Store } from '../../../src/store/port.js';
import { inventoryMigrations } from '../../../src/domains/inventory/index.js';
import { BACKENDS, type Backend, type TestDatabase } from '../../store/backends.js';

export { BACKENDS, type Backend };

export interface InventoryDatabase {
  db: TestDatabase;
  store: Store;
  close(): Promise<void>;
}

export async function openInventoryStore(
  backend: Backend,
  opts: { poolSize?: number } = {},
): Promise<InventoryDatabase> {
  const db = await backend.create();
  const store = await db.open(opts);
  await store.migrate(inventoryMigrations(store.dialect));
  return {
    db,
    store,
    close: async () => {
      await store.close();
      await db.drop();
    },
  };
}

/** A deterministic pseudo-random generator (mulberry32), so failures reproduce. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
