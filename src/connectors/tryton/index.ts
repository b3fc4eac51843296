// The Tryton 6.0 connector: a JSON-RPC client and the ERP port over it (docs/tryton.md).
export {
  TrytonClient,
  decimal,
  decimalText,
  dateTimeText,
  trytonDate,
  trytonDateTime,
  truthy,
  type CallOptions,
  type TrytonClientOptions,
  type TrytonTransport,
  type TrytonWireAnswer,
} from './client.js';
export { TrytonErp, type TrytonErpOptions, type TrytonStatusChange } from './erp.js';
export { currencyDigits, decimalToMinor, minorToDecimal, netUnitPrice } from './money.js';
