import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import {
  createLegacyErp,
  parseCsv,
  soapActionOf,
  toCsv,
  SOAP_ENVELOPE_NAMESPACE,
  LEGACY_ERP_NAMESPACE,
} from '../../src/sandbox/legacy-erp/index.js';
import type { LegacyErp, LegacyErpOptions } from '../../src/sandbox/legacy-erp/index.js';
import { buildCatalogue } from '../../src/sandbox/cloud-erp/catalogue.js';

// Known SKUs of the default seed (some numbered SKUs are deliberately absent from the ERPs).
const [SKU_A, SKU_B, SKU_C] = buildCatalogue({ seed: 1 }).items.map((i) => i.itemId) as [
  string,
  string,
  string,
];

const PASSWORD = 'legacy-test-password';
const AUTH = `Basic ${Buffer.from(`middlemart:${PASSWORD}`).toString('base64')}`;
const parser = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true });

async function start(
  extra: Partial<LegacyErpOptions> = {},
): Promise<{ erp: LegacyErp; url: string }> {
  const erp = createLegacyErp({ password: PASSWORD, ...extra });
  const url = await erp.listen();
  return { erp, url };
}

function soapEnvelope(inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="${SOAP_ENVELOPE_NAMESPACE}" xmlns:l="${LEGACY_ERP_NAMESPACE}">
  <soapenv:Header/>
  <soapenv:Body>${inner}</soapenv:Body>
</soapenv:Envelope>`;
}

function soapCall(url: string, operation: string, xml: string, auth = AUTH): Promise<Response> {
  return fetch(`${url}/soap`, {
    method: 'POST',
    headers: {
      'content-type': 'text/xml; charset=utf-8',
      soapaction: `"${soapActionOf(operation as 'PostSalesOrder')}"`,
      authorization: auth,
    },
    body: xml,
  });
}

function postOrderXml(reference: string, sku: string, quantity = '2'): string {
  return soapEnvelope(`
    <l:PostSalesOrderRequest>
      <l:ExternalReference>${reference}</l:ExternalReference>
      <l:OrderDate>2026-01-15</l:OrderDate>
      <l:Currency>USD</l:Currency>
      <l:Warehouse>DC-US-1</l:Warehouse>
      <l:Lines>
        <l:Line><l:Sku>${sku}</l:Sku><l:Quantity>${quantity}</l:Quantity><l:UnitPrice>12.50</l:UnitPrice></l:Line>
      </l:Lines>
    </l:PostSalesOrderRequest>`);
}

interface FaultBody {
  faultcode: string;
  faultstring: string;
  detail?: { ValidationErrors: { Error: unknown } };
}

async function faultOf(res: Response): Promise<FaultBody> {
  const parsed = parser.parse(await res.text()) as { Envelope: { Body: { Fault: FaultBody } } };
  return parsed.Envelope.Body.Fault;
}

void test('the WSDL is valid XML naming the service, binding style and every operation', async () => {
  const { erp, url } = await start();
  try {
    const res = await fetch(`${url}/soap?wsdl`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/xml/);
    const wsdl = await res.text();
    assert.equal(XMLValidator.validate(wsdl), true);
    const doc = parser.parse(wsdl) as {
      definitions: {
        portType: { operation: { '@_name': string }[] };
        binding: { binding: { '@_style': string }; operation: { '@_name': string }[] };
        service: { '@_name': string; port: { address: { '@_location': string } } };
      };
    };
    const defs = doc.definitions;
    assert.deepEqual(defs.portType.operation.map((o) => o['@_name']).sort(), [
      'CancelSalesOrder',
      'GetStockLevels',
      'PostSalesOrder',
    ]);
    assert.equal(defs.binding.binding['@_style'], 'document');
    assert.deepEqual(defs.binding.operation.map((o) => o['@_name']).sort(), [
      'CancelSalesOrder',
      'GetStockLevels',
      'PostSalesOrder',
    ]);
    assert.equal(defs.service['@_name'], 'LegacyErpService');
    assert.equal(defs.service.port.address['@_location'], `${url}/soap`);
  } finally {
    await erp.close();
  }
});

void test('PostSalesOrder round-trips, dedupes by external reference and allocates stock', async () => {
  const { erp, url } = await start();
  try {
    const known = await (
      await soapCall(
        url,
        'GetStockLevels',
        soapEnvelope(
          `<l:GetStockLevelsRequest><l:Warehouse>DC-US-1</l:Warehouse></l:GetStockLevelsRequest>`,
        ),
      )
    ).text();
    const levels = parser.parse(known) as {
      Envelope: { Body: { GetStockLevelsResponse: { StockLevel: { Sku: string }[] } } };
    };
    const firstSku = levels.Envelope.Body.GetStockLevelsResponse.StockLevel[0]?.Sku ?? SKU_A;

    const res = await soapCall(url, 'PostSalesOrder', postOrderXml('US-ORD-1', firstSku));
    assert.equal(res.status, 200);
    const ok = parser.parse(await res.text()) as {
      Envelope: {
        Body: { PostSalesOrderResponse: { OrderNumber: string; Status: string; Total: number } };
      };
    };
    const response = ok.Envelope.Body.PostSalesOrderResponse;
    assert.equal(response.Status, 'Created');
    assert.equal(response.Total, 25);

    const again = await soapCall(url, 'PostSalesOrder', postOrderXml('US-ORD-1', firstSku));
    const dup = parser.parse(await again.text()) as typeof ok;
    assert.equal(dup.Envelope.Body.PostSalesOrderResponse.Status, 'AlreadyExists');
    assert.equal(dup.Envelope.Body.PostSalesOrderResponse.OrderNumber, response.OrderNumber);
    assert.equal(erp.orders().length, 1);
    assert.equal(erp.counters().salesOrderDuplicates, 1);

    const stock = await soapCall(
      url,
      'GetStockLevels',
      soapEnvelope(
        `<l:GetStockLevelsRequest><l:Warehouse>DC-US-1</l:Warehouse><l:Sku>${firstSku}</l:Sku></l:GetStockLevelsRequest>`,
      ),
    );
    const parsed = parser.parse(await stock.text()) as {
      Envelope: {
        Body: {
          GetStockLevelsResponse: {
            StockLevel: { Sku: string; OnHand: number; Allocated: number; Available: number };
          };
        };
      };
    };
    const level = parsed.Envelope.Body.GetStockLevelsResponse.StockLevel;
    assert.equal(level.Sku, firstSku);
    assert.equal(level.Allocated, 2);
    assert.equal(level.Available, level.OnHand - 2);
  } finally {
    await erp.close();
  }
});

void test('SOAP faults: malformed XML, unknown action, validation errors; 401 without auth', async () => {
  const { erp, url } = await start();
  try {
    const malformed = await soapCall(url, 'PostSalesOrder', '<soapenv:Envelope><unclosed>');
    assert.equal(malformed.status, 500);
    assert.match(malformed.headers.get('content-type') ?? '', /text\/xml/);
    const f1 = await faultOf(malformed);
    assert.equal(f1.faultcode, 'soap:Client');
    assert.match(f1.faultstring, /Malformed XML/);

    const unknown = await soapCall(url, 'CancelEverything', soapEnvelope('<l:X/>'));
    assert.equal(unknown.status, 500);
    const f2 = await faultOf(unknown);
    assert.equal(f2.faultcode, 'soap:Client');
    assert.match(f2.faultstring, /Unknown SOAPAction/);

    const invalid = await soapCall(url, 'PostSalesOrder', postOrderXml('US-ORD-2', 'NOPE-1', '0'));
    assert.equal(invalid.status, 500);
    const f3 = await faultOf(invalid);
    assert.equal(f3.faultcode, 'soap:Client');
    const errors = f3.detail?.ValidationErrors.Error as { '@_path': string; '@_code': string }[];
    assert.deepEqual(
      errors.map((e) => [e['@_path'], e['@_code']]),
      [
        ['Lines/Line[1]/Sku', 'UNKNOWN_SKU'],
        ['Lines/Line[1]/Quantity', 'INVALID'],
      ],
    );

    const unauthorised = await soapCall(
      url,
      'PostSalesOrder',
      postOrderXml('US-ORD-3', SKU_A),
      `Basic ${Buffer.from('middlemart:wrong').toString('base64')}`,
    );
    assert.equal(unauthorised.status, 401);
    assert.match(unauthorised.headers.get('www-authenticate') ?? '', /Basic/);
    assert.equal(erp.orders().length, 0);
    assert.equal(erp.counters().soapFaults, 3);
  } finally {
    await erp.close();
  }
});

void test('CSV writing quotes per RFC 4180 and parsing tracks lines across quoted newlines', () => {
  const csv = toCsv([
    ['sku', 'description'],
    ['A-1', 'Tee, "Limited"'],
    ['A-2', 'two\nlines'],
    ['A-3', 'plain'],
  ]);
  assert.equal(
    csv,
    'sku,description\r\nA-1,"Tee, ""Limited"""\r\nA-2,"two\nlines"\r\nA-3,plain\r\n',
  );
  const parsed = parseCsv(csv);
  assert.deepEqual(parsed.errors, []);
  assert.deepEqual(
    parsed.records.map((r) => [r.line, ...r.fields]),
    [
      [1, 'sku', 'description'],
      [2, 'A-1', 'Tee, "Limited"'],
      [3, 'A-2', 'two\nlines'],
      [5, 'A-3', 'plain'],
    ],
  );
  const broken = parseCsv('a,b\n1,"open\n');
  assert.deepEqual(broken.errors, [{ line: 2, message: 'unterminated quoted field' }]);
});

void test('the nightly export writes dated item and stock CSVs', async () => {
  const dropDir = await mkdtemp(join(tmpdir(), 'legacy-erp-export-'));
  const erp = createLegacyErp({
    password: PASSWORD,
    dropDir,
    now: () => Date.UTC(2026, 5, 15, 2, 0, 0),
  });
  try {
    const result = await erp.exportNightly();
    assert.equal(result.itemsFile, join(dropDir, 'items-20260615.csv'));
    assert.equal(result.stockFile, join(dropDir, 'stock-20260615.csv'));
    const itemsText = await readFile(result.itemsFile, 'utf8');
    const items = parseCsv(itemsText);
    assert.deepEqual(items.errors, []);
    assert.deepEqual(items.records[0]?.fields, [
      'sku',
      'description',
      'ean',
      'unit',
      'list_price',
      'currency',
      'status',
    ]);
    assert.equal(items.records.length, 201);
    assert.ok(items.records.every((r) => r.fields.length === 7));
    assert.match(itemsText, /"[^"\r\n]*""Limited"", size [A-Z]+"/);
    const stock = parseCsv(await readFile(result.stockFile, 'utf8'));
    assert.deepEqual(stock.records[0]?.fields, [
      'sku',
      'warehouse',
      'on_hand',
      'allocated',
      'available',
    ]);
    assert.equal(stock.records.length, 1 + 200 * 2);
    const dir = await readdir(dropDir);
    assert.ok(!dir.some((n) => n.endsWith('.partial')));
  } finally {
    await erp.close();
    await rm(dropDir, { recursive: true, force: true });
  }
});

const HEADER =
  'order_reference,order_date,customer_number,currency,warehouse,sku,quantity,unit_price';

void test('inbound order CSVs: good files are imported, bad files rejected with line errors', async () => {
  const dropDir = await mkdtemp(join(tmpdir(), 'legacy-erp-import-'));
  const erp = createLegacyErp({ password: PASSWORD, dropDir, inboundPollIntervalMs: 0 });
  try {
    await erp.pollInbound(); // creates the folders
    const good = [
      HEADER,
      `CSV-1,2026-01-10,C-77,USD,DC-US-1,${SKU_A},2,10.00`,
      `CSV-1,2026-01-10,C-77,USD,DC-US-1,${SKU_B},1,5.5`,
      `"CSV-2",2026-01-11,,USD,STORE-NYC-01,${SKU_C},4,"1.25"`,
    ].join('\r\n');
    const bad = [
      HEADER,
      `CSV-3,2026-01-12,,USD,DC-US-1,${SKU_A},1,3.00`,
      'CSV-3,2026-01-12,,USD,DC-US-1,NOPE-9,1,3.00',
      `CSV-4,2026-13-40,,USD,DC-US-1,${SKU_A},0,abc`,
      `CSV-5,2026-01-12,,USD,DC-US-1,${SKU_A}`,
    ].join('\n');
    await writeFile(join(dropDir, 'inbound', 'orders-0001.csv'), good);
    await writeFile(join(dropDir, 'inbound', 'orders-0002.csv'), bad);
    await writeFile(join(dropDir, 'inbound', 'readme.txt'), 'ignored');

    const results = await erp.pollInbound();
    assert.deepEqual(
      results.map((r) => [r.file, r.status, r.orders]),
      [
        ['orders-0001.csv', 'processed', 2],
        ['orders-0002.csv', 'rejected', 0],
      ],
    );
    assert.ok(existsSync(join(dropDir, 'processed', 'orders-0001.csv')));
    assert.ok(existsSync(join(dropDir, 'rejected', 'orders-0002.csv')));
    assert.ok(existsSync(join(dropDir, 'inbound', 'readme.txt')));
    assert.ok(!existsSync(join(dropDir, 'inbound', 'orders-0001.csv')));

    const orders = erp.orders();
    assert.deepEqual(
      orders.map((o) => [o.externalReference, o.lines.length, o.total, o.source]),
      [
        ['CSV-1', 2, 25.5, 'flat-file'],
        ['CSV-2', 1, 5, 'flat-file'],
      ],
    );

    const report = parseCsv(
      await readFile(join(dropDir, 'errors', 'orders-0002.csv.errors.csv'), 'utf8'),
    );
    const rows = report.records.map((r) => r.fields);
    assert.deepEqual(rows[0], ['line', 'field', 'error']);
    const pairs = rows.slice(1).map((r) => `${r[0]}:${r[1]}`);
    assert.deepEqual(pairs, ['3:sku', '4:order_date', '4:quantity', '4:unit_price', '5:']);

    // Re-dropping an imported order is a duplicate, not a second order.
    await writeFile(
      join(dropDir, 'inbound', 'orders-0003.csv'),
      `${HEADER}\nCSV-1,2026-01-10,C-77,USD,DC-US-1,${SKU_A},2,10.00\n`,
    );
    const again = await erp.pollInbound();
    assert.deepEqual(
      again.map((r) => [r.status, r.orders, r.duplicates]),
      [['processed', 0, 1]],
    );
    assert.equal(erp.orders().length, 2);
  } finally {
    await erp.close();
    await rm(dropDir, { recursive: true, force: true });
  }
});

void test('the inbound folder is polled on an interval once listening', async () => {
  const dropDir = await mkdtemp(join(tmpdir(), 'legacy-erp-poll-'));
  const erp = createLegacyErp({ password: PASSWORD, dropDir, inboundPollIntervalMs: 25 });
  try {
    await erp.listen();
    await writeFile(
      join(dropDir, 'inbound', 'orders-poll.csv'),
      `${HEADER}\nPOLL-1,2026-01-10,,USD,DC-US-1,${SKU_A},1,1.00\n`,
    );
    for (let i = 0; i < 400 && erp.orders().length === 0; i += 1) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.deepEqual(
      erp.orders().map((o) => o.externalReference),
      ['POLL-1'],
    );
  } finally {
    await erp.close();
    await rm(dropDir, { recursive: true, force: true });
  }
});

void test('the nightly export also runs on its interval once listening', async () => {
  const dropDir = await mkdtemp(join(tmpdir(), 'legacy-erp-interval-'));
  const erp = createLegacyErp({
    password: PASSWORD,
    dropDir,
    exportIntervalMs: 25,
    inboundPollIntervalMs: 0,
    now: () => Date.UTC(2026, 0, 2),
  });
  try {
    await erp.listen();
    // The export writes the items file, then the stock file: wait for both.
    const files = ['items-20260102.csv', 'stock-20260102.csv'].map((f) => join(dropDir, f));
    for (let i = 0; i < 400 && !files.every((f) => existsSync(f)); i += 1) {
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const f of files) assert.ok(existsSync(f), f);
  } finally {
    await erp.close();
    await rm(dropDir, { recursive: true, force: true });
  }
});
