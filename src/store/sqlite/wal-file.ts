// The WAL file of a SQLite database, made durable from outside SQLite: an fdatasync on a libuv
// thread, off the event loop. Every frame written to the WAL before the call began is on disk
// when it resolves; the WAL is append-only and checksummed in sequence, so recovery never keeps
// a later commit without the earlier ones. The file counts the commits written to it and which
// of them are known to be on disk, so one fdatasync serves every caller waiting for a commit it
// covers. Used by the background-sync mode and by `durable()` after relaxed commits.
import { closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';

/** fdatasyncs of the WAL running at once (a later one need not wait for an earlier one). */
const MAX_PARALLEL_SYNCS = 2;

export class WalFile {
  private fd: number | null = null;
  /** Commits written so far, and how many of them are known to be on disk. */
  private written = 0;
  private onDisk = 0;
  /** The latest fdatasync started, the commits it covers, and how many are running. */
  private latest: Promise<void> | null = null;
  private startedUpTo = 0;
  private running = 0;

  constructor(readonly path: string) {}

  /**
   * Counts a commit just written to the WAL and returns its number. `synced`: SQLite's own fsync
   * (synchronous=FULL) has put it, and every commit before it, on disk.
   */
  committed(synced: boolean): number {
    this.written++;
    if (synced) this.onDisk = this.written;
    return this.written;
  }

  /**
   * Resolves once commit number `n` (by default every commit so far) is on disk: an fdatasync
   * that started after the commit was written covers it and every commit before it. Nothing to
   * do when no commit since the last fsync is pending.
   */
  async durable(n = this.written): Promise<void> {
    while (this.onDisk < n) {
      // Start an fdatasync for this commit unless one that covers it has started, or too many
      // are running (then wait for the latest and look again).
      if (this.startedUpTo < n && this.running < MAX_PARALLEL_SYNCS) {
        const upTo = this.written;
        this.startedUpTo = upTo;
        this.running++;
        this.latest = this.sync()
          .then(() => {
            this.onDisk = Math.max(this.onDisk, upTo);
          })
          .finally(() => {
            this.running--;
          });
      }
      await this.latest;
    }
  }

  /** One fdatasync of the WAL (what `durable()` runs when it must). */
  sync(): Promise<void> {
    // The WAL keeps its inode while a connection is open; reopen if it was ever replaced.
    if (this.fd !== null && fstatSync(this.fd).ino !== statSync(this.path).ino) {
      closeSync(this.fd);
      this.fd = null;
    }
    this.fd ??= openSync(this.path, 'r');
    const fd = this.fd;
    return new Promise<void>((res, rej) => fdatasync(fd, (err) => (err ? rej(err) : res())));
  }

  /** Waits for the fdatasync under way, if any, then closes the descriptor. */
  async close(): Promise<void> {
    await this.latest?.catch(() => undefined);
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
