// PII at rest: personal data (names, emails, phones, addresses, dates of birth) is sealed with
// AES-256-GCM before it reaches a table, under a key id so keys can be rotated (old keys still
// open what they sealed); lookups and blocking use keyed HMAC-SHA256 blind indexes, so no
// plaintext value is ever stored or compared in SQL. The keys come from the composition root.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
} from 'node:crypto';

const SEALED_PREFIX = 'pii1';

export interface PiiKeys {
  /** The key new values are sealed with (32 bytes). */
  current: Buffer;
  /** Earlier keys, still accepted for opening values sealed before a rotation. */
  previous?: readonly Buffer[];
  /**
   * The blind index key (32 bytes). Default: derived from `current`; pin it across a key
   * rotation, or re-index, since lookups compare its digests.
   */
  index?: Buffer;
}

/** The id stored beside every sealed value: the first 16 hex digits of the key's SHA-256. */
export function piiKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** Decodes a base64 AES-256 key; throws naming the problem when it is not 32 bytes. */
export function decodePiiKey(base64: string, where: string): Buffer {
  const key = Buffer.from(base64.trim(), 'base64');
  if (key.length !== 32) {
    throw new Error(`${where}: expected a base64 AES-256 key of 32 bytes, got ${key.length} bytes`);
  }
  return key;
}

export class PiiVault {
  readonly keyId: string;
  private readonly keys = new Map<string, Buffer>();
  private readonly indexKey: Buffer;

  constructor(keys: PiiKeys) {
    if (keys.current.length !== 32) throw new Error('the PII key must be 32 bytes');
    this.keyId = piiKeyId(keys.current);
    this.keys.set(this.keyId, keys.current);
    for (const k of keys.previous ?? []) this.keys.set(piiKeyId(k), k);
    this.indexKey =
      keys.index ??
      Buffer.from(hkdfSync('sha256', keys.current, Buffer.alloc(0), 'middlemart blind index', 32));
  }

  /** Seals a JSON value: `pii1.<keyId>.<iv>.<tag>.<ciphertext>` (base64url parts). */
  seal(value: unknown): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.keyId)!, iv);
    cipher.setAAD(Buffer.from(this.keyId));
    const ct = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [SEALED_PREFIX, this.keyId, b64(iv), b64(tag), b64(ct)].join('.');
  }

  /** Opens a sealed value; throws when the key id is unknown or the value was altered. */
  open<T = unknown>(sealed: string): T {
    const [prefix, keyId, iv, tag, ct] = sealed.split('.');
    if (prefix !== SEALED_PREFIX || !keyId || iv === undefined || !tag || ct === undefined) {
      throw new Error('not a sealed PII value');
    }
    const key = this.keys.get(keyId);
    if (!key) throw new Error(`PII key ${keyId} is not configured (rotated out?)`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(keyId));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plain = Buffer.concat([
      decipher.update(Buffer.from(ct, 'base64url')),
      decipher.final(),
    ]).toString('utf8');
    return JSON.parse(plain) as T;
  }

  /** The key id a sealed value was sealed under. */
  static keyIdOf(sealed: string): string | undefined {
    return sealed.split('.')[1];
  }

  /** A keyed digest of `kind` + normalised value: equal values give equal digests. */
  blindIndex(kind: string, value: string): string {
    return createHmac('sha256', this.indexKey)
      .update(kind)
      .update('\u0000')
      .update(value)
      .digest('base64url');
  }
}

function b64(buf: Buffer): string {
  return buf.toString('base64url');
}
