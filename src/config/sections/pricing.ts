// The `pricing` section of the estate config. Strict like the rest of the file; everything has a
// default, so the section may be left out.
import { z } from 'zod';

export const PricingConfigSchema = z.strictObject({});

export type PricingConfig = z.output<typeof PricingConfigSchema>;
