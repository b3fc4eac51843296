// The `residency` section of the estate config: which system regions may receive the personal
// data of a customer of each region. A customer's data may always go to systems of its own
// region; systems without a configured region are not checked unless `allowUnregioned` is false.
import { z } from 'zod';

const REGION = /^[a-z][a-z0-9-]{0,31}$/;
const RegionCode = z.string().regex(REGION, 'regions are lower-case codes such as eu, us');

export const ResidencyConfigSchema = z.strictObject({
  /** Customer region → further system regions allowed (its own region is always allowed). */
  allowed: z.record(RegionCode, z.array(RegionCode)).default({}),
  /** May a system without a region receive personal data? Default true (residency is opt-in
   * by giving systems a region); false refuses it to every system whose region is unknown. */
  allowUnregioned: z.boolean().default(true),
});

export type ResidencyConfig = z.output<typeof ResidencyConfigSchema>;

/** Why `systemRegion` may not receive the data of a `customerRegion` customer, or undefined. */
export function residencyRefusal(
  rules: ResidencyConfig,
  customerRegion: string,
  system: { id: string; region?: string | undefined },
): string | undefined {
  if (system.region === undefined) {
    return rules.allowUnregioned
      ? undefined
      : `residency: ${system.id} has no region; personal data of a ${customerRegion} customer stays in allowed regions`;
  }
  if (system.region === customerRegion) return undefined;
  if ((rules.allowed[customerRegion] ?? []).includes(system.region)) return undefined;
  return `residency: ${system.id} is in region ${system.region}, outside the regions allowed for a ${customerRegion} customer (${[customerRegion, ...(rules.allowed[customerRegion] ?? [])].join(', ')})`;
}
