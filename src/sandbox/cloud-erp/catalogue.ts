// The sandbox estate's item master, stock and customer accounts, generated deterministically from
// a seed so that every run (and every simulator sharing the seed) sees the same world. A few SKUs
// of the numbered range are deliberately absent from the ERP to drive invalid-SKU scenarios.
import { mulberry32 } from '../kit.js';

export interface CatalogueItem {
  /** ERP internal id (what the ERP's references use). */
  id: string;
  /** The retailer's SKU (the ERP's "item name/number"). */
  itemId: string;
  displayName: string;
  /** EAN-13 with a valid GS1 check digit. */
  upcCode: string;
  /** Decimal price in `currency` (the ERP's own representation: not minor units). */
  basePrice: number;
  currency: string;
  unitsType: 'EA';
  isInactive: boolean;
}

export interface StockLevel {
  quantityOnHand: number;
  quantityCommitted: number;
}

export interface CustomerAccount {
  id: string;
  externalReference?: string;
  companyName: string;
  email: string;
  /** VAT / tax registration number. */
  taxId: string;
  country: string;
  /** Payment terms code, e.g. NET30. */
  terms: string;
  creditLimit: number;
  currency: string;
  subsidiary: string;
}

export interface Catalogue {
  items: CatalogueItem[];
  /** SKUs of the numbered range that the ERP does not know. */
  absentSkus: string[];
  /** Every SKU of the numbered range, known or not (what a storefront might sell). */
  allSkus: string[];
  locations: string[];
  /** Stock by location, then by ERP item id. */
  stock: Map<string, Map<string, StockLevel>>;
  customers: CustomerAccount[];
}

/** Stock locations of the sandbox estate: two distribution centres and four stores. */
export const ESTATE_LOCATIONS = [
  'DC-EU-1',
  'DC-US-1',
  'STORE-BER-01',
  'STORE-PAR-01',
  'STORE-LON-01',
  'STORE-NYC-01',
] as const;

/** SKU of the n-th item of the numbered range (1-based): MM-00001 … */
export function skuOf(n: number): string {
  return `MM-${String(n).padStart(5, '0')}`;
}

const ADJECTIVES = [
  'Classic',
  'Organic',
  'Slim',
  'Heritage',
  'Everyday',
  'Premium',
  'Light',
  'Urban',
  'Coastal',
  'Alpine',
];
const NOUNS = [
  'Tee',
  'Hoodie',
  'Jeans',
  'Sneaker',
  'Backpack',
  'Mug',
  'Candle',
  'Scarf',
  'Beanie',
  'Jacket',
  'Socks',
  'Bottle',
];
const COLOURS = ['Black', 'White', 'Navy', 'Olive', 'Sand', 'Red'];
const COMPANY_WORDS = ['Nordwind', 'Lumen', 'Acorn', 'Harbor', 'Vela', 'Kestrel', 'Oak', 'Brio'];
const COMPANY_FORMS: [string, string, string][] = [
  ['GmbH', 'DE', 'EUR'],
  ['SAS', 'FR', 'EUR'],
  ['Ltd', 'GB', 'GBP'],
  ['Inc.', 'US', 'USD'],
  ['B.V.', 'NL', 'EUR'],
];
const TERMS = ['NET15', 'NET30', 'NET45', 'NET60', 'DUE_ON_RECEIPT'];

function pick<T>(list: readonly T[], random: () => number): T {
  return list[Math.floor(random() * list.length)] as T;
}

/** Appends the GS1 mod-10 check digit to 12 digits. */
function ean13(twelveDigits: string): string {
  const digits = [...twelveDigits].map(Number).reverse();
  let sum = 0;
  digits.forEach((d, i) => {
    sum += d * (i % 2 === 0 ? 3 : 1);
  });
  return twelveDigits + String((10 - (sum % 10)) % 10);
}

export interface CatalogueOptions {
  seed?: number;
  /** Items the ERP knows (default 200). */
  itemCount?: number;
  /** SKUs of the numbered range left out of the ERP (default 4). */
  absentCount?: number;
  customerCount?: number;
}

/** Builds the deterministic estate catalogue for a seed. */
export function buildCatalogue(opts: CatalogueOptions = {}): Catalogue {
  const random = mulberry32(opts.seed ?? 1);
  const itemCount = opts.itemCount ?? 200;
  const absentCount = opts.absentCount ?? 4;
  const rangeSize = itemCount + absentCount;

  const absent = new Set<number>();
  while (absent.size < absentCount) absent.add(1 + Math.floor(random() * rangeSize));

  const items: CatalogueItem[] = [];
  const allSkus: string[] = [];
  for (let n = 1; n <= rangeSize; n += 1) {
    const sku = skuOf(n);
    allSkus.push(sku);
    const name = `${pick(ADJECTIVES, random)} ${pick(NOUNS, random)} ${pick(COLOURS, random)}`;
    const price = Math.round((4.99 + random() * 195) * 100) / 100;
    if (absent.has(n)) continue;
    items.push({
      id: String(1000 + n * 7),
      itemId: sku,
      displayName: name,
      upcCode: ean13(`400${String(n).padStart(9, '0')}`),
      basePrice: price,
      currency: 'EUR',
      unitsType: 'EA',
      isInactive: false,
    });
  }

  const stock = new Map<string, Map<string, StockLevel>>();
  for (const location of ESTATE_LOCATIONS) {
    const byItem = new Map<string, StockLevel>();
    const isDc = location.startsWith('DC-');
    for (const item of items) {
      const zero = random() < 0.05;
      const onHand = zero ? 0 : Math.floor(random() * (isDc ? 500 : 40));
      byItem.set(item.id, { quantityOnHand: onHand, quantityCommitted: 0 });
    }
    stock.set(location, byItem);
  }

  const customers: CustomerAccount[] = [];
  const customerCount = opts.customerCount ?? 20;
  for (let i = 1; i <= customerCount; i += 1) {
    const [form, country, currency] = pick(COMPANY_FORMS, random);
    const word = pick(COMPANY_WORDS, random);
    const digits = String(100000000 + Math.floor(random() * 899999999));
    customers.push({
      id: String(2000 + i),
      companyName: `${word} Retail ${i} ${form}`,
      email: `accounts${i}@${word.toLowerCase()}-retail.example`,
      taxId: country === 'US' ? `${digits.slice(0, 2)}-${digits.slice(2, 9)}` : country + digits,
      country,
      terms: pick(TERMS, random),
      creditLimit: 5000 * (1 + Math.floor(random() * 20)),
      currency,
      subsidiary: country === 'US' ? 'Middlemart US' : 'Middlemart EU',
    });
  }

  return {
    items,
    absentSkus: allSkus.filter((_, i) => absent.has(i + 1)),
    allSkus,
    locations: [...ESTATE_LOCATIONS],
    stock,
    customers,
  };
}
