// The WAL file of a SQLite database, made durable from outside SQLite: an fdatasync on a libuv
// thread, off the event loop. Every frame written to the WAL before the call began is on disk
// when it resolves; the WAL is append-only and checksummed in sequence, so recovery never keeps
// a later commit without the earlier ones. Used by the background-sync mode and by `durable()`
// after relaxed commits.
import { closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';

export class WalFile {
  private fd: number | null = null;

  constructor(readonly path: string) {}

  /** One fdatasync of the WAL. */
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

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
