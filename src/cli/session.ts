// The running sandbox's session: where `middlemart start` (embedded default, with the sandbox)
// listens, its development key and the estate's system URLs, so that `middlemart simulate` run
// beside it needs no flags. Written at start (mode 0600: it holds a key), removed at stop.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const SANDBOX_SESSION_FILE = '.middlemart/sandbox-session.json';

export interface SandboxSession {
  /** Middlemart's base URL. */
  url: string;
  /** The development admin key of this run. */
  apiKey: string;
  /** The estate config (YAML) pointing at the running simulators. */
  estateConfig: string;
}

export function writeSandboxSession(session: SandboxSession, file = SANDBOX_SESSION_FILE): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(session, null, 2)}\n`, { mode: 0o600 });
}

export function removeSandboxSession(file = SANDBOX_SESSION_FILE): void {
  rmSync(file, { force: true });
}

/** The session of a sandbox running from this folder, if there is one. */
export function readSandboxSession(file = SANDBOX_SESSION_FILE): SandboxSession | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as Partial<SandboxSession>;
    if (
      typeof value.url === 'string' &&
      typeof value.apiKey === 'string' &&
      typeof value.estateConfig === 'string'
    ) {
      return { url: value.url, apiKey: value.apiKey, estateConfig: value.estateConfig };
    }
  } catch {
    // A damaged session file is ignored: flags still work.
  }
  return undefined;
}
