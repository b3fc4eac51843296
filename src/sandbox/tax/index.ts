// Tax engine simulator: quotes sales tax / VAT per line from a small rate table by country (and
// by state for the US), with standard, reduced and exempt tax codes. Amounts are integer minor
// units; each line's tax is rounded half-up to the minor unit.
import { isCountryCode, isCurrencyCode } from '../../canonical/primitives.js';
import { createSimulator } from '../kit.js';
import type { Simulator, SimulatorOptions } from '../kit.js';

/** Rates in basis points (1900 = 19 %): [standard, reduced]. */
export const COUNTRY_TAX_RATES: Readonly<Record<string, readonly [number, number]>> = {
  AT: [2000, 1000],
  AU: [1000, 0],
  BE: [2100, 600],
  CH: [810, 260],
  DE: [1900, 700],
  DK: [2500, 2500],
  ES: [2100, 1000],
  FR: [2000, 550],
  GB: [2000, 500],
  IE: [2300, 1350],
  IT: [2200, 1000],
  JP: [1000, 800],
  NL: [2100, 900],
  NO: [2500, 1500],
  PL: [2300, 800],
  SE: [2500, 1200],
};

/** US state sales tax in basis points (state rate only; no local rates). */
export const US_STATE_TAX_RATES: Readonly<Record<string, number>> = {
  CA: 725,
  DE: 0,
  FL: 600,
  IL: 625,
  MA: 625,
  MT: 0,
  NH: 0,
  NJ: 663,
  NY: 400,
  OR: 0,
  PA: 600,
  TX: 625,
  WA: 650,
};

const TAX_CODES = ['STANDARD', 'REDUCED', 'EXEMPT'] as const;
type TaxCode = (typeof TAX_CODES)[number];

export type TaxEngineOptions = SimulatorOptions;

interface FieldError {
  field: string;
  message: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Creates the tax engine simulator (not yet listening). */
export function createTaxEngine(opts: TaxEngineOptions = {}): Simulator {
  const now = opts.now ?? Date.now;
  const sim = createSimulator('tax', opts);
  const { app } = sim;
  let nextQuote = 1;

  app.post('/quotes', async (request, reply) => {
    const body: unknown = request.body;
    if (!isRecord(body)) {
      return reply.code(400).send({
        type: 'validation_error',
        errors: [{ field: 'body', message: 'must be a JSON object' }],
      });
    }
    const errors: FieldError[] = [];
    const currency = body.currency;
    if (typeof currency !== 'string' || !isCurrencyCode(currency)) {
      errors.push({ field: 'currency', message: 'an ISO 4217 currency code' });
    }
    const shipTo = isRecord(body.shipTo) ? body.shipTo : undefined;
    let jurisdiction = '';
    let rates: readonly [number, number] = [0, 0];
    if (shipTo === undefined) {
      errors.push({ field: 'shipTo', message: 'required: { country, region? }' });
    } else {
      const country = shipTo.country;
      const region = shipTo.region;
      if (typeof country !== 'string' || !isCountryCode(country)) {
        errors.push({ field: 'shipTo.country', message: 'an ISO 3166-1 alpha-2 country code' });
      } else if (country === 'US') {
        const stateRate = typeof region === 'string' ? US_STATE_TAX_RATES[region] : undefined;
        if (stateRate === undefined) {
          errors.push({
            field: 'shipTo.region',
            message: `a US state code with a known rate: ${Object.keys(US_STATE_TAX_RATES).join(', ')}`,
          });
        } else {
          jurisdiction = `US-${region as string}`;
          rates = [stateRate, stateRate];
        }
      } else {
        const countryRates = COUNTRY_TAX_RATES[country];
        if (countryRates === undefined) {
          errors.push({
            field: 'shipTo.country',
            message: `no tax jurisdiction configured for ${country}`,
          });
        } else {
          jurisdiction = country;
          rates = countryRates;
        }
      }
    }
    const lines: {
      lineId: string;
      sku: string;
      quantity: number;
      unitPrice: number;
      taxCode: TaxCode;
    }[] = [];
    if (!Array.isArray(body.lines) || body.lines.length === 0) {
      errors.push({ field: 'lines', message: 'required: at least one line' });
    } else {
      body.lines.forEach((line: unknown, i) => {
        const at = `lines[${i}]`;
        if (!isRecord(line)) {
          errors.push({ field: at, message: 'must be an object' });
          return;
        }
        const { sku, quantity, unitPrice } = line;
        const taxCode = line.taxCode ?? 'STANDARD';
        let ok = true;
        if (typeof sku !== 'string' || sku === '' || sku.length > 64) {
          errors.push({ field: `${at}.sku`, message: 'required: 1 to 64 characters' });
          ok = false;
        }
        if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity <= 0) {
          errors.push({ field: `${at}.quantity`, message: 'a whole number greater than 0' });
          ok = false;
        }
        if (typeof unitPrice !== 'number' || !Number.isSafeInteger(unitPrice) || unitPrice < 0) {
          errors.push({ field: `${at}.unitPrice`, message: 'integer minor units >= 0' });
          ok = false;
        }
        if (typeof taxCode !== 'string' || !(TAX_CODES as readonly string[]).includes(taxCode)) {
          errors.push({ field: `${at}.taxCode`, message: `one of ${TAX_CODES.join(', ')}` });
          ok = false;
        }
        if (ok) {
          lines.push({
            lineId: typeof line.id === 'string' ? line.id : String(i + 1),
            sku: sku as string,
            quantity: quantity as number,
            unitPrice: unitPrice as number,
            taxCode: taxCode as TaxCode,
          });
        }
      });
    }
    if (errors.length > 0) {
      sim.count('quotesRejected');
      sim.record('rejectedQuotes', { body, errors });
      return reply.code(422).send({ type: 'validation_error', errors });
    }
    const quoted = lines.map((l) => {
      const bps = l.taxCode === 'EXEMPT' ? 0 : l.taxCode === 'REDUCED' ? rates[1] : rates[0];
      const netAmount = l.quantity * l.unitPrice;
      return {
        ...l,
        netAmount,
        rate: bps / 10000,
        rateBasisPoints: bps,
        taxAmount: Math.round((netAmount * bps) / 10000),
        jurisdiction,
      };
    });
    const totalNet = quoted.reduce((n, l) => n + l.netAmount, 0);
    const totalTax = quoted.reduce((n, l) => n + l.taxAmount, 0);
    const quote = {
      quoteId: `TQ-${String(nextQuote++).padStart(8, '0')}`,
      currency,
      shipTo,
      jurisdiction,
      lines: quoted,
      totalNet,
      totalTax,
      totalGross: totalNet + totalTax,
      calculatedAt: new Date(now()).toISOString(),
    };
    sim.record('quotes', { body, quoteId: quote.quoteId, totalTax });
    return quote;
  });

  app.get('/rates', async () => ({ countries: COUNTRY_TAX_RATES, usStates: US_STATE_TAX_RATES }));

  return sim;
}
