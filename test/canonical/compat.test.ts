// The schema compatibility checker against synthetic before/after pairs: it must catch each kind
// of break and let additive changes through.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { checkCompatibility, type BreakKind } from '../../src/canonical/index.js';

type S = Record<string, unknown>;

/** A small order-like schema in the shape zod generates (with $defs and $ref). */
function base(): S {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: {
      id: { type: 'string', minLength: 1, maxLength: 64 },
      channel: { $ref: '#/$defs/Channel' },
      note: { type: 'string' },
      lines: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          properties: {
            sku: { type: 'string', pattern: '^\\S+$' },
            quantity: { type: 'integer', exclusiveMinimum: 0, maximum: 9999 },
            price: { $ref: '#/$defs/Money' },
          },
          required: ['sku', 'quantity'],
          additionalProperties: false,
        },
      },
      placedAt: { type: 'string', format: 'date-time' },
      giftMessage: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    },
    required: ['id', 'channel', 'lines'],
    additionalProperties: false,
    $defs: {
      Channel: { type: 'string', enum: ['web', 'store', 'marketplace'] },
      Money: {
        type: 'object',
        properties: { amount: { type: 'integer' }, currency: { type: 'string' } },
        required: ['amount', 'currency'],
        additionalProperties: false,
      },
    },
  };
}

function changed(mutate: (s: S) => void): S {
  const s = structuredClone(base());
  mutate(s);
  return s;
}

const props = (s: S) => s.properties as Record<string, S>;
const line = (s: S) => (props(s).lines!.items as S).properties as Record<string, S>;
const defs = (s: S) => s.$defs as Record<string, S>;

function kinds(after: S): Array<[BreakKind, string]> {
  return checkCompatibility(base(), after).map((b) => [b.kind, b.path]);
}

void describe('breaking changes are caught', () => {
  void test('a field is removed (top level and nested)', () => {
    assert.deepEqual(kinds(changed((s) => delete props(s).note)), [['field-removed', 'note']]);
    assert.deepEqual(kinds(changed((s) => delete line(s).price)), [
      ['field-removed', 'lines[].price'],
    ]);
  });

  void test('an optional field becomes required, or a new required field appears', () => {
    assert.deepEqual(kinds(changed((s) => (s.required as string[]).push('note'))), [
      ['field-became-required', 'note'],
    ]);
    assert.deepEqual(
      kinds(
        changed((s) => {
          props(s).region = { type: 'string' };
          (s.required as string[]).push('region');
        }),
      ),
      [['required-field-added', 'region']],
    );
  });

  void test('an enum loses a value (through a $ref)', () => {
    const after = changed((s) => (defs(s).Channel!.enum = ['web', 'store']));
    const breaks = checkCompatibility(base(), after);
    assert.deepEqual(
      breaks.map((b) => [b.kind, b.path]),
      [['enum-narrowed', 'channel']],
    );
    assert.match(breaks[0]!.message, /"marketplace"/);
  });

  void test('a type changes', () => {
    assert.deepEqual(kinds(changed((s) => (line(s).quantity = { type: 'string' }))), [
      ['type-changed', 'lines[].quantity'],
    ]);
    assert.deepEqual(
      kinds(
        changed(
          (s) =>
            (defs(s).Money!.properties = {
              amount: { type: 'number' },
              currency: { type: 'integer' },
            }),
        ),
      ),
      [['type-changed', 'lines[].price.currency']],
    );
    // number → integer narrows too.
    const wide = changed((s) => (line(s).quantity = { type: 'number' }));
    assert.deepEqual(
      checkCompatibility(wide, base()).map((b) => [b.kind, b.path]),
      [['type-changed', 'lines[].quantity']],
    );
  });

  void test('limits, patterns and formats tighten', () => {
    assert.deepEqual(kinds(changed((s) => (props(s).id!.maxLength = 32))), [
      ['constraint-tightened', 'id'],
    ]);
    assert.deepEqual(kinds(changed((s) => (props(s).lines!.minItems = 2))), [
      ['constraint-tightened', 'lines'],
    ]);
    assert.deepEqual(kinds(changed((s) => (line(s).quantity!.maximum = 999))), [
      ['constraint-tightened', 'lines[].quantity'],
    ]);
    assert.deepEqual(kinds(changed((s) => (line(s).quantity!.exclusiveMinimum = 1))), [
      ['constraint-tightened', 'lines[].quantity'],
    ]);
    assert.deepEqual(kinds(changed((s) => (line(s).sku!.pattern = '^[A-Z]+$'))), [
      ['pattern-changed', 'lines[].sku'],
    ]);
    assert.deepEqual(kinds(changed((s) => (props(s).note!.format = 'email'))), [
      ['format-changed', 'note'],
    ]);
  });

  void test('a nullable field stops accepting null', () => {
    assert.deepEqual(kinds(changed((s) => (props(s).giftMessage = { type: 'string' }))), [
      ['type-changed', 'giftMessage'],
    ]);
  });

  void test('an open object is closed to extra fields', () => {
    const open = changed((s) => delete s.additionalProperties);
    assert.deepEqual(
      checkCompatibility(open, base()).map((b) => [b.kind, b.path]),
      [['closed-to-extra-fields', '(root)']],
    );
  });

  void test('a free-form field gains an enumeration or a constant', () => {
    assert.deepEqual(kinds(changed((s) => (props(s).note = { type: 'string', enum: ['a'] }))), [
      ['enum-narrowed', 'note'],
    ]);
    assert.deepEqual(kinds(changed((s) => (props(s).note = { type: 'string', const: 'a' }))), [
      ['const-changed', 'note'],
    ]);
  });
});

void describe('compatible changes pass', () => {
  void test('identical schemas', () => {
    assert.deepEqual(checkCompatibility(base(), base()), []);
  });

  void test('a new optional field, also in a closed object', () => {
    assert.deepEqual(
      kinds(
        changed((s) => {
          props(s).region = { type: 'string' };
          line(s).unit = { type: 'string' };
        }),
      ),
      [],
    );
  });

  void test('an enum gains a value, a required field becomes optional, limits loosen', () => {
    assert.deepEqual(
      kinds(
        changed((s) => {
          defs(s).Channel!.enum = ['web', 'store', 'marketplace', 'mobile'];
          s.required = ['id', 'lines'];
          props(s).id!.maxLength = 128;
          props(s).lines!.minItems = 0;
          line(s).quantity!.maximum = 99999;
          delete line(s).sku!.pattern;
        }),
      ),
      [],
    );
  });

  void test('integer widens to number; a field becomes nullable; descriptions change', () => {
    assert.deepEqual(
      kinds(
        changed((s) => {
          line(s).quantity = { type: 'number', exclusiveMinimum: 0, maximum: 9999 };
          props(s).note = { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'x' };
          props(s).id!.description = 'Order id.';
        }),
      ),
      [],
    );
  });

  void test('inlining a $ref changes nothing', () => {
    const inlined = changed((s) => {
      props(s).channel = { type: 'string', enum: ['web', 'store', 'marketplace'] };
    });
    assert.deepEqual(kinds(inlined), []);
  });
});
