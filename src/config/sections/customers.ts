// The `customers` section of the estate config. Strict like the rest of the file; everything has a
// default, so the section may be left out.
import { z } from 'zod';

export const CustomersConfigSchema = z.strictObject({});

export type CustomersConfig = z.output<typeof CustomersConfigSchema>;
