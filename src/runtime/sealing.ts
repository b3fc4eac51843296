// Sealed payloads: the engine can keep every message, delivery and dead letter payload encrypted
// at rest (AES-256-GCM), so its tables hold no readable personal data. The composition root hands
// the engine a PayloadSealer built from key material it loads (the PII key, ADR 0018); the
// engine seals on insert and opens on read. Payloads written in clear (before a key was
// configured) stay readable: a sealed value is recognised by its prefix, which names the key id,
// so keys can rotate (earlier keys still open what they sealed).
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/** What the engine asks of a payload sealer. `json` is the payload's JSON text. */
export interface PayloadSealer {
  /** The id of the key new payloads are sealed under. */
  readonly keyId: string;
  /** JSON text → the stored form (`mms1.<keyId>.<iv>.<tag>.<ciphertext>`). */
  seal(json: string): string;
  /** The stored form → the JSON text; throws a SealedPayloadError when it cannot be opened. */
  open(stored: string): string;
  /** Whether a stored payload is sealed (anything else is JSON text written in clear). */
  isSealed(stored: string): boolean;
}

/** Every sealed payload starts with this; JSON text never does. */
export const SEALED_PAYLOAD_PREFIX = 'mms1.';

/** A sealed payload that cannot be opened: unknown key (rotated out?), no key, or altered. */
export class SealedPayloadError extends Error {
  override readonly name = 'SealedPayloadError';
  constructor(
    message: string,
    /** The key id the payload names, when it names one. */
    readonly keyId?: string,
  ) {
    super(message);
  }
}

export function isSealedPayload(stored: string): boolean {
  return stored.startsWith(SEALED_PAYLOAD_PREFIX);
}

/** The key id a sealed payload names (undefined for clear JSON). */
export function sealedKeyId(stored: string): string | undefined {
  if (!isSealedPayload(stored)) return undefined;
  const end = stored.indexOf('.', SEALED_PAYLOAD_PREFIX.length);
  return end < 0 ? undefined : stored.slice(SEALED_PAYLOAD_PREFIX.length, end);
}

/** The id of a key: the first 16 hex digits of its SHA-256 (the same id the PII vault stores). */
export function sealingKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

export interface SealingKeys {
  /** The key new payloads are sealed under (32 bytes). */
  current: Buffer;
  /** Earlier keys, still used to open payloads sealed before a rotation. */
  previous?: readonly Buffer[];
}

/** The payload key is derived from the configured key, so it never encrypts anything else. */
function payloadKey(key: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'middlemart engine payloads', 32));
}

class AesGcmPayloadSealer implements PayloadSealer {
  readonly keyId: string;
  private readonly keys = new Map<string, Buffer>();
  private readonly current: Buffer;
  private readonly aad: Buffer;

  constructor(keys: SealingKeys) {
    if (keys.current.length !== 32) throw new Error('the payload sealing key must be 32 bytes');
    this.keyId = sealingKeyId(keys.current);
    this.current = payloadKey(keys.current);
    this.aad = Buffer.from(this.keyId);
    this.keys.set(this.keyId, this.current);
    for (const k of keys.previous ?? []) {
      if (k.length !== 32) throw new Error('a previous payload sealing key must be 32 bytes');
      const id = sealingKeyId(k);
      if (!this.keys.has(id)) this.keys.set(id, payloadKey(k));
    }
  }

  seal(json: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.current, iv);
    cipher.setAAD(this.aad);
    const ct = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()]);
    return `${SEALED_PAYLOAD_PREFIX}${this.keyId}.${iv.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}.${ct.toString('base64url')}`;
  }

  open(stored: string): string {
    if (!isSealedPayload(stored)) return stored;
    const parts = stored.slice(SEALED_PAYLOAD_PREFIX.length).split('.');
    const [keyId, iv, tag, ct] = parts;
    if (parts.length !== 4 || !keyId || !iv || !tag || ct === undefined) {
      throw new SealedPayloadError('sealed payload is malformed', keyId);
    }
    const key = this.keys.get(keyId);
    if (!key) {
      throw new SealedPayloadError(
        `payload is sealed under key ${keyId}, which is not configured (current key ${this.keyId}; a rotated-out key belongs in the previous keys)`,
        keyId,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(keyId));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([
        decipher.update(Buffer.from(ct, 'base64url')),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new SealedPayloadError(
        `sealed payload under key ${keyId} failed authentication (altered, or a different key with the same id)`,
        keyId,
      );
    }
  }

  isSealed(stored: string): boolean {
    return isSealedPayload(stored);
  }
}

/** An AES-256-GCM sealer over the given key(s) (node:crypto only). */
export function createPayloadSealer(keys: SealingKeys): PayloadSealer {
  return new AesGcmPayloadSealer(keys);
}

/** The stored form of a payload's JSON text: sealed when a sealer is given, else as it is. */
export function storedPayload(sealer: PayloadSealer | undefined, json: string): string {
  return sealer ? sealer.seal(json) : json;
}

/** The JSON text of a stored payload; clear rows pass through, sealed ones need the key. */
export function payloadText(sealer: PayloadSealer | undefined, stored: string): string {
  if (sealer) return sealer.isSealed(stored) ? sealer.open(stored) : stored;
  if (!isSealedPayload(stored)) return stored;
  throw new SealedPayloadError(
    `payload is sealed under key ${sealedKeyId(stored) ?? '?'} and no payload key is configured`,
    sealedKeyId(stored),
  );
}

/** Parses a stored payload (sealed or clear); null for a missing one. */
export function readStoredPayload(sealer: PayloadSealer | undefined, stored: unknown): unknown {
  if (typeof stored !== 'string') return null;
  return JSON.parse(payloadText(sealer, stored)) as unknown;
}
