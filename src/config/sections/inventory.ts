// The `inventory` section of the estate config. Strict like the rest of the file; everything has a
// default, so the section may be left out.
import { z } from 'zod';

export const InventoryConfigSchema = z.strictObject({});

export type InventoryConfig = z.output<typeof InventoryConfigSchema>;
