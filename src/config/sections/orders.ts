// The `orders` section of the estate config. Strict like the rest of the file; everything has a
// default, so the section may be left out.
import { z } from 'zod';

export const OrdersConfigSchema = z.strictObject({});

export type OrdersConfig = z.output<typeof OrdersConfigSchema>;
