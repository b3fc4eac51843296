// Where a command writes: the output configured on the program (the terminal when run as the
// bin, a buffer in tests). Commands write through this, never straight to process.stdout.
import type { Command } from 'commander';

export interface CliOutput {
  /** Writes one line (a newline is added) to standard output. */
  out(line: string): void;
  /** Writes one line (a newline is added) to standard error. */
  err(line: string): void;
}

export function outputOf(command: Command): CliOutput {
  const config = command.configureOutput();
  const writeOut = config.writeOut ?? ((s: string) => process.stdout.write(s));
  const writeErr = config.writeErr ?? ((s: string) => process.stderr.write(s));
  return {
    out: (line) => writeOut(`${line}\n`),
    err: (line) => writeErr(`${line}\n`),
  };
}
