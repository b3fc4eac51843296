// A `sqlite:` store URL's path and the options it may carry after `?`, read alike by the store
// and by config validation (so a bad option is reported before start).

export const THREAD_WITH_BACKGROUND =
  'sqlite sync=background applies to writer=main only, not writer=thread';

/**
 * Options a `sqlite:` URL may carry after `?` (`sqlite:./x.db?writer=thread`, `?sync=background`);
 * throws an Error naming an unknown option or a combination that cannot apply.
 */
export function sqliteUrlOptions(url: string): {
  rest: string;
  writer?: 'main' | 'thread';
  sync?: 'full' | 'background';
} {
  const q = url.indexOf('?');
  if (q < 0) return { rest: url };
  let writer: 'main' | 'thread' | undefined;
  let sync: 'full' | 'background' | undefined;
  for (const [key, value] of new URLSearchParams(url.slice(q + 1))) {
    if (key === 'writer' && (value === 'main' || value === 'thread')) writer = value;
    else if (key === 'sync' && (value === 'full' || value === 'background')) sync = value;
    else
      throw new Error(
        `unsupported sqlite URL option ${key}=${value} (expected writer=main|thread or sync=full|background)`,
      );
  }
  if (writer === 'thread' && sync === 'background') throw new Error(THREAD_WITH_BACKGROUND);
  return { rest: url.slice(0, q), ...(writer ? { writer } : {}), ...(sync ? { sync } : {}) };
}

/** The SQLite path of a `sqlite:` URL (`sqlite:./x.db`, `sqlite:///abs/x.db`, `sqlite::memory:`). */
export function sqlitePath(url: string): string {
  let rest = sqliteUrlOptions(url).rest.slice('sqlite:'.length);
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '') throw new Error('sqlite URL needs a path, e.g. sqlite:./.middlemart/data.db');
  return rest;
}
