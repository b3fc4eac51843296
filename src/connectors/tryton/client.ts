// Tryton 6.0 JSON-RPC client: one POST per call to the database endpoint
// (`http://host:8000/<db>/`), a session from `common.db.login` sent as
// `Authorization: Session base64(login:uid:session)`, the company context appended to every
// `model.*` call, and every failure classified as an `ErpError` (permanent, transient or
// warning). A 401 (expired, logged-out or stale session) logs in again and repeats the call once.
import { request, type Dispatcher } from 'undici';
import { ErpError } from '../../ports/erp.js';

/** What a Tryton call answered on the wire (status and body text). */
export interface TrytonWireAnswer {
  status: number;
  body: string;
}

/** Sends one HTTP POST; replaceable so tests can cut the line at a chosen call. */
export type TrytonTransport = (
  url: string,
  init: { headers: Record<string, string>; body: string; signal?: AbortSignal; method: string },
) => Promise<TrytonWireAnswer>;

export interface TrytonClientOptions {
  /** The database endpoint, e.g. `http://127.0.0.1:8000/tryton/`. */
  url: string;
  username: string;
  password: string;
  /** The system id, for error details. */
  system?: string;
  language?: string;
  /** Company id; read from the user's preferences after login when absent. */
  company?: number;
  /** Per-call timeout in ms (default 30 000). */
  timeoutMs?: number;
  /** `fail` (default): a UserWarning is a failure; `accept`: confirm it and repeat the call. */
  warningPolicy?: 'fail' | 'accept';
  transport?: TrytonTransport;
  dispatcher?: Dispatcher;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** A Tryton Decimal on the wire. */
export interface TrytonDecimal {
  __class__: 'Decimal';
  decimal: string;
}

/** Encodes a decimal string (e.g. `19.99`) as a Tryton Decimal. */
export function decimal(value: string): TrytonDecimal {
  return { __class__: 'Decimal', decimal: value };
}

/** Encodes an RFC 3339 timestamp's UTC day as a Tryton date. */
export function trytonDate(iso: string): Record<string, unknown> {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new ErpError(`not a date: ${iso}`, 'permanent');
  return {
    __class__: 'date',
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
  };
}

/** Encodes an instant as a Tryton (UTC) datetime. */
export function trytonDateTime(iso: string): Record<string, unknown> {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new ErpError(`not a timestamp: ${iso}`, 'permanent');
  const micro = /\.(\d{1,6})/.exec(iso)?.[1];
  return {
    __class__: 'datetime',
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    microsecond: micro ? Number(micro.padEnd(6, '0')) : d.getUTCMilliseconds() * 1000,
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a Tryton Decimal (or a plain number) as a decimal string. */
export function decimalText(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  if (isRecord(value) && value.__class__ === 'Decimal' && typeof value.decimal === 'string') {
    return value.decimal;
  }
  return undefined;
}

/**
 * Reads a Tryton datetime (UTC) or date as RFC 3339 with microseconds kept
 * (`2026-11-28T06:40:01.123456Z`), so it can serve as an exact watermark.
 */
export function dateTimeText(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  const n = (k: string) => (typeof value[k] === 'number' ? value[k] : 0);
  const p = (v: number, w = 2) => String(v).padStart(w, '0');
  if (value.__class__ === 'datetime') {
    return (
      `${p(n('year'), 4)}-${p(n('month'))}-${p(n('day'))}T${p(n('hour'))}:${p(n('minute'))}:` +
      `${p(n('second'))}.${p(n('microsecond'), 6)}Z`
    );
  }
  if (value.__class__ === 'date') {
    return `${p(n('year'), 4)}-${p(n('month'))}-${p(n('day'))}T00:00:00.000000Z`;
  }
  return undefined;
}

/** SQLite answers booleans as 1/0, PostgreSQL as true/false. */
export function truthy(value: unknown): boolean {
  return value === true || value === 1;
}

const defaultTransport =
  (dispatcher?: Dispatcher): TrytonTransport =>
  async (url, init) => {
    const res = await request(url, {
      method: 'POST',
      headers: init.headers,
      body: init.body,
      ...(init.signal ? { signal: init.signal } : {}),
      ...(dispatcher ? { dispatcher } : {}),
    });
    return { status: res.statusCode, body: await res.body.text() };
  };

/** Error class names Tryton puts in `error[0]`. */
const TYPED_ERRORS = new Set([
  'UserError',
  'UserWarning',
  'ConcurrencyException',
  'LoginException',
  'RateLimitException',
]);

/** Messages of server-side exceptions that a later attempt may not meet again. */
const TRANSIENT_SERVER_MESSAGE = /database is locked|could not serialize|deadlock|timeout|busy/i;

interface Session {
  header: string;
  userId: number;
  context: Record<string, unknown>;
}

export class TrytonClient {
  private session: Session | undefined;
  private loggingIn: Promise<Session> | undefined;
  private nextId = 1;
  private readonly transport: TrytonTransport;
  private readonly url: string;
  readonly system: string;

  constructor(private readonly opts: TrytonClientOptions) {
    this.url = opts.url.endsWith('/') ? opts.url : `${opts.url}/`;
    this.transport = opts.transport ?? defaultTransport(opts.dispatcher);
    this.system = opts.system ?? 'tryton';
  }

  /** The context sent with every `model.*` call (company, language). */
  async context(options: CallOptions = {}): Promise<Record<string, unknown>> {
    return (await this.ensureSession(options)).context;
  }

  /** Forgets the session (the next call logs in again). */
  forgetSession(): void {
    this.session = undefined;
  }

  /** Logs the current session out on the server (used to test session renewal). */
  async logout(options: CallOptions = {}): Promise<void> {
    const session = this.session;
    if (!session) return;
    await this.post('common.db.logout', [], session.header, options);
  }

  /**
   * Calls `model.<model>.<method>` with `params` followed by the company context (merged with
   * `context`). UserWarnings follow the warning policy.
   */
  async model<T = unknown>(
    model: string,
    method: string,
    params: unknown[],
    options: CallOptions & { context?: Record<string, unknown> } = {},
  ): Promise<T> {
    const name = `model.${model}.${method}`;
    for (let warnings = 0; ; warnings++) {
      try {
        return await this.authenticated<T>(
          async (session) => [...params, { ...session.context, ...options.context }],
          name,
          options,
        );
      } catch (err) {
        if (
          err instanceof ErpError &&
          err.kind === 'warning' &&
          this.opts.warningPolicy === 'accept' &&
          warnings < 5 &&
          err.details.code
        ) {
          // Confirm the warning once for this user, then repeat the call.
          await this.authenticated(
            async (session) => [
              [{ user: session.userId, name: err.details.code, always: false }],
              session.context,
            ],
            'model.res.user.warning.create',
            options,
          );
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * Runs a wizard to its end: `create`, then `execute` of each state in `states` with the data
   * given for it (the context carries the record the wizard acts on), then `delete`.
   */
  async wizard(
    name: string,
    record: { model: string; id: number },
    states: ReadonlyArray<{ state: string; data: Record<string, unknown> }>,
    options: CallOptions = {},
  ): Promise<void> {
    const created = await this.authenticated<[number, string, string]>(
      async (session) => [session.context],
      `wizard.${name}.create`,
      options,
    );
    const sessionId = created[0];
    try {
      for (const step of states) {
        await this.authenticated(
          async (session) => [
            sessionId,
            step.data,
            step.state,
            {
              ...session.context,
              active_model: record.model,
              active_id: record.id,
              active_ids: [record.id],
            },
          ],
          `wizard.${name}.execute`,
          options,
        );
      }
    } finally {
      await this.authenticated(
        async (session) => [sessionId, session.context],
        `wizard.${name}.delete`,
        options,
      ).catch(() => undefined);
    }
  }

  /** Calls a method on the database endpoint with the session; re-logs in once on a 401. */
  private async authenticated<T>(
    build: (session: Session) => Promise<unknown[]>,
    method: string,
    options: CallOptions,
  ): Promise<T> {
    let session = await this.ensureSession(options);
    try {
      return (await this.post(method, await build(session), session.header, options)) as T;
    } catch (err) {
      if (!(err instanceof ErpError) || err.details.status !== 401) throw err;
      // Expired, logged out, or not fresh enough: log in again and repeat once.
      if (this.session === session) this.session = undefined;
      session = await this.ensureSession(options);
      return (await this.post(method, await build(session), session.header, options)) as T;
    }
  }

  private ensureSession(options: CallOptions): Promise<Session> {
    if (this.session) return Promise.resolve(this.session);
    this.loggingIn ??= this.login(options).finally(() => {
      this.loggingIn = undefined;
    });
    return this.loggingIn;
  }

  private async login(options: CallOptions): Promise<Session> {
    const language = this.opts.language ?? 'en';
    let answer: unknown;
    try {
      answer = await this.post(
        'common.db.login',
        [this.opts.username, { password: this.opts.password }, language],
        undefined,
        options,
      );
    } catch (err) {
      if (err instanceof ErpError && err.details.status === 401) {
        throw new ErpError(
          `${this.system}: Tryton refused the login of ${this.opts.username} (check the credentials)`,
          'permanent',
          { ...err.details, code: 'LoginFailed' },
        );
      }
      throw err;
    }
    if (!Array.isArray(answer) || typeof answer[0] !== 'number' || typeof answer[1] !== 'string') {
      throw new ErpError(`${this.system}: unexpected login answer from Tryton`, 'permanent', {
        system: this.system,
        code: 'LoginFailed',
      });
    }
    const [userId, key] = answer as [number, string];
    const header = `Session ${Buffer.from(`${this.opts.username}:${userId}:${key}`).toString('base64')}`;
    let company = this.opts.company;
    if (company === undefined) {
      const prefs = (await this.post(
        'model.res.user.get_preferences',
        [true, {}],
        header,
        options,
      )) as Record<string, unknown>;
      if (typeof prefs?.company !== 'number') {
        throw new ErpError(
          `${this.system}: the Tryton user ${this.opts.username} has no company`,
          'permanent',
          { system: this.system },
        );
      }
      company = prefs.company;
    }
    const session: Session = { header, userId, context: { company, language } };
    this.session = session;
    return session;
  }

  /** One JSON-RPC POST, classified. */
  private async post(
    method: string,
    params: unknown[],
    authorization: string | undefined,
    options: CallOptions,
  ): Promise<unknown> {
    const id = this.nextId++;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      // Without it a 401 asks the client for Basic credentials.
      'x-requested-with': 'XMLHttpRequest',
    };
    if (authorization) headers.authorization = authorization;
    const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? 30_000);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let answer: TrytonWireAnswer;
    try {
      answer = await this.transport(this.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ id, method, params }),
        signal,
      });
    } catch (err) {
      if (err instanceof ErpError) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new ErpError(`${this.system}: Tryton unreachable (${method}): ${reason}`, 'transient', {
        system: this.system,
        code: 'ConnectionFailed',
      });
    }
    return this.interpret(method, answer);
  }

  private interpret(method: string, answer: TrytonWireAnswer): unknown {
    const { status } = answer;
    const details = { system: this.system, status };
    if (status === 401) {
      throw new ErpError(`${this.system}: Tryton session not valid (${method})`, 'transient', {
        ...details,
        code: 'SessionInvalid',
      });
    }
    if (status === 429) {
      throw new ErpError(`${this.system}: Tryton is rate limiting (${method})`, 'transient', {
        ...details,
        code: 'TooManyRequests',
        retryAfterSeconds: 5,
      });
    }
    if (status >= 500 || status === 408) {
      throw new ErpError(
        `${this.system}: Tryton answered HTTP ${status} (${method})`,
        'transient',
        {
          ...details,
          code: `HTTP${status}`,
        },
      );
    }
    if (status !== 200) {
      throw new ErpError(
        `${this.system}: Tryton refused ${method} with HTTP ${status}`,
        'permanent',
        { ...details, code: `HTTP${status}` },
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(answer.body);
    } catch {
      throw new ErpError(`${this.system}: Tryton answered ${method} with no JSON`, 'transient', {
        ...details,
        code: 'BadResponse',
      });
    }
    if (!isRecord(body)) {
      throw new ErpError(`${this.system}: unexpected Tryton answer to ${method}`, 'permanent', {
        ...details,
        code: 'BadResponse',
      });
    }
    if (body.error !== undefined && body.error !== null) {
      throw this.errorOf(method, body.error);
    }
    if (!('result' in body)) {
      throw new ErpError(
        `${this.system}: Tryton answered ${method} without a result`,
        'permanent',
        {
          ...details,
          code: 'BadResponse',
        },
      );
    }
    return body.result;
  }

  private errorOf(method: string, error: unknown): ErpError {
    const details = { system: this.system, status: 200 };
    if (!Array.isArray(error)) {
      return new ErpError(
        `${this.system}: Tryton error in ${method}: ${JSON.stringify(error)}`,
        'permanent',
        details,
      );
    }
    const [head, payload] = error as [unknown, unknown];
    if (typeof head === 'string' && TYPED_ERRORS.has(head)) {
      const args = Array.isArray(payload) ? payload : [payload];
      if (head === 'UserWarning') {
        // [name, message, description]
        const [name, message, description] = args as [unknown, unknown, unknown];
        const text = [message, description].filter((s) => typeof s === 'string' && s).join(' ');
        return new ErpError(text || String(name), 'warning', {
          ...details,
          code: typeof name === 'string' ? name : 'UserWarning',
        });
      }
      const [message, description] = args as [unknown, unknown];
      const text =
        [message, description].filter((s) => typeof s === 'string' && s).join(' — ') ||
        `${head} in ${method}`;
      const kind =
        head === 'ConcurrencyException' || head === 'RateLimitException'
          ? 'transient'
          : 'permanent';
      return new ErpError(text, kind, { ...details, code: head });
    }
    // A server-side exception: the message is the first item.
    const message = typeof head === 'string' ? head : JSON.stringify(head);
    return new ErpError(
      `${this.system}: Tryton failed in ${method}: ${message}`,
      TRANSIENT_SERVER_MESSAGE.test(message) ? 'transient' : 'permanent',
      { ...details, code: 'ServerError' },
    );
  }
}
