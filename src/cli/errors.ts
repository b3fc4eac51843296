// Exit codes and the error a command throws to end the CLI with one of them.

export const ExitCode = {
  /** Done. */
  ok: 0,
  /** The command ran and failed (a dependency was down, a run was refused…). */
  failure: 1,
  /** Bad usage: unknown command or option, bad argument. Also an invalid configuration file. */
  usage: 2,
  invalidConfig: 2,
} as const;

/**
 * Thrown by a command to stop with `exitCode`. `run()` prints the message (when there is one)
 * to stderr and returns the code; nothing else is printed, so a command that already reported
 * its problem throws `new CliExit(code)` without a message.
 */
export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
    this.name = 'CliExit';
  }
}
