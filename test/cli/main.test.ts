// The CLI frame: version, help on every command, usage errors and their exit status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { ConfigError } from '../../src/config/load.js';
import { CliExit, ExitCode } from '../../src/cli/errors.js';
import { outputOf } from '../../src/cli/io.js';
import { COMMANDS, buildProgram, run, type RegisterCommand } from '../../src/cli/main.js';
import { REPO_ROOT, runBin, runInProcess } from './helpers.js';

const VERSION = (
  JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

void test('--version prints the package version (bin and run)', async () => {
  const bin = await runBin(['--version']);
  assert.equal(bin.code, 0);
  assert.equal(bin.stdout, `${VERSION}\n`);
  const inProcess = await runInProcess(['-V']);
  assert.equal(inProcess.code, 0);
  assert.equal(inProcess.stdout, `${VERSION}\n`);
});

void test('the bin file starts with a node shebang', () => {
  const source = readFileSync(join(REPO_ROOT, 'src/cli/main.ts'), 'utf8');
  assert.ok(source.startsWith('#!/usr/bin/env node\n'));
});

void test('--help works on the program and on every command', async () => {
  const top = await runInProcess(['--help']);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /^Usage: middlemart \[options\] \[command\]/);
  assert.match(top.stdout, /\n {2}config +check and inspect the estate configuration/);

  const names: string[][] = [];
  const walk = (cmd: Command, prefix: string[]) => {
    for (const sub of cmd.commands) {
      names.push([...prefix, sub.name()]);
      walk(sub, [...prefix, sub.name()]);
    }
  };
  walk(buildProgram(), []);
  assert.ok(names.some((n) => n.join(' ') === 'config validate'));
  for (const name of names) {
    const result = await runInProcess([...name, '--help']);
    assert.equal(result.code, 0, name.join(' '));
    assert.match(result.stdout, new RegExp(`^Usage: middlemart ${name.join(' ')}`), name.join(' '));
  }
  const validate = await runInProcess(['config', 'validate', '--help']);
  assert.match(validate.stdout, /--env/);
  assert.match(validate.stdout, /Exit status: 0 when valid, 2 when invalid/);
});

void test('an unknown command exits 2 and names it', async () => {
  const result = await runBin(['confg']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /unknown command 'confg'/);
  assert.match(result.stderr, /Did you mean config\?/);
});

void test('an unknown option exits 2 and names it', async () => {
  const result = await runInProcess(['config', 'validate', '--strict-mode']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /unknown option '--strict-mode'/);
});

void test('an extra argument exits 2 and says so', async () => {
  const result = await runInProcess(['config', 'validate', 'a.yaml', 'b.yaml']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /too many arguments for 'validate'/);
});

void test('no command prints the help to stderr and exits 2', async () => {
  const result = await runInProcess([]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /^Usage: middlemart/);
});

void test('a command group without a subcommand prints its help and exits 2', async () => {
  const result = await runInProcess(['config']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^Usage: middlemart config/);
});

/** Runs `argv` against a program holding only the given command modules. */
async function runWith(argv: string[], ...commands: RegisterCommand[]) {
  let stdout = '';
  let stderr = '';
  const code = await run(
    argv,
    { writeOut: (t) => void (stdout += t), writeErr: (t) => void (stderr += t) },
    commands,
  );
  return { code, stdout, stderr };
}

void test('a registered command module gets the shared output, help and exit handling', async () => {
  const register: RegisterCommand = (program) => {
    program
      .command('greet')
      .description('say hello')
      .argument('<name>', 'who to greet')
      .option('--times <n>', 'how often', (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number >= 1');
        return n;
      })
      .action((name: string, options: { times?: number }, command: Command) => {
        const io = outputOf(command);
        for (let i = 0; i < (options.times ?? 1); i++) io.out(`hello ${name}`);
      });
  };
  assert.deepEqual(await runWith(['greet', 'shop', '--times', '2'], register), {
    code: 0,
    stdout: 'hello shop\nhello shop\n',
    stderr: '',
  });
  const help = await runWith(['greet', '--help'], register);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: middlemart greet \[options\] <name>/);

  const bad = await runWith(['greet', 'shop', '--times', 'many'], register);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /option '--times <n>' argument 'many' is invalid\. a whole number >= 1/);

  const missing = await runWith(['greet'], register);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing required argument 'name'/);
});

void test('errors thrown by commands become exit statuses', async () => {
  const failing: RegisterCommand = (program) => {
    program.command('refuse').action(() => {
      throw new CliExit(ExitCode.failure, 'the ERP is unreachable');
    });
    program.command('quiet').action(() => {
      throw new CliExit(3);
    });
    program.command('misconfigured').action(() => {
      throw new ConfigError('estate.yaml', [
        { path: 'systems[0].baseUrl', line: 7, column: 14, message: 'bad url' },
      ]);
    });
    program.command('crash').action(async () => {
      await Promise.resolve();
      throw new Error('boom');
    });
  };
  assert.deepEqual(await runWith(['refuse'], failing), {
    code: 1,
    stdout: '',
    stderr: 'middlemart: the ERP is unreachable\n',
  });
  assert.deepEqual(await runWith(['quiet'], failing), { code: 3, stdout: '', stderr: '' });
  assert.deepEqual(await runWith(['misconfigured'], failing), {
    code: 2,
    stdout: '',
    stderr: 'estate.yaml:7:14  systems[0].baseUrl  bad url\n',
  });
  const crash = await runWith(['crash'], failing);
  assert.equal(crash.code, 1);
  assert.match(crash.stderr, /^middlemart: Error: boom/);
});

void test('the registered commands include config', () => {
  const names = buildProgram(undefined, COMMANDS).commands.map((c) => c.name());
  assert.ok(names.includes('config'));
});
