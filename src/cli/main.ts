import { parseArgs } from 'node:util';
import { nearest } from '../domain/nearest';
import { ApiError } from './api';
import { API_HELP, CliError, parseCommand, UsageError, type Command, type Options } from './command';
import { COMMANDS } from './commands/index';

/** Every command's options, so a value given before the command word (`--data-dir X backup`) is not taken for it. */
const ALL_OPTIONS = Object.assign({}, ...COMMANDS.map((c) => c.options), { help: { type: 'boolean', short: 'h' } }) as Options;

const HELP = `Usage: prefix-handles <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)}${c.summary}`).join('\n')}

Run 'prefix-handles <command> --help' (or 'prefix-handles help <command>') for a command's arguments and options.

mint, bundle, session, expand, handles, show, delete, report, request, requests, import and
verify talk to the REST API with a tenant's key:
${API_HELP}
tenants, keys and prune take the service's admin key instead (--key, or env PH_ADMIN_KEY), or,
with --offline and the service stopped, work on its database file.

Exit codes: 0 success, 1 failure (API error, failed check, rejected import line), 2 usage error.`;

/** An unknown command word, with the nearest command when one is near (`reprot` → report). */
function unknownCommand(word: string): string {
  const near = nearest(word, COMMANDS.map((c) => c.name));
  return `unknown command '${word}'${near ? `; did you mean ${near}?` : ''}`;
}

/** Runs one command line; returns the exit code, or undefined when the command keeps running (serve). */
async function main(argv: string[]): Promise<number | undefined> {
  let cmd: Command | undefined;
  try {
    // Find the command word: global options may stand before it.
    const { tokens } = parseArgs({ args: argv, options: ALL_OPTIONS, allowPositionals: true, strict: false, tokens: true });
    const word = tokens.find((t) => t.kind === 'positional');
    if (!word || word.kind !== 'positional') {
      if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) {
        process.stdout.write(`${HELP}\n`);
        return 0;
      }
      const unknown = tokens.find((t) => t.kind === 'option' && !(t.name in ALL_OPTIONS));
      throw new UsageError(unknown && unknown.kind === 'option' ? `unknown option '${unknown.rawName}'` : argv.length ? 'no command given' : 'a command is required');
    }
    // `prefix-handles help [command]`, as git and npm take it.
    if (word.value === 'help') {
      const named = tokens.find((t) => t.kind === 'positional' && t.index > word.index);
      const of = named?.kind === 'positional' ? COMMANDS.find((c) => c.name === named.value) : undefined;
      if (named?.kind === 'positional' && !of) throw new UsageError(unknownCommand(named.value));
      process.stdout.write(`${of ? of.help : HELP}\n`);
      return 0;
    }
    cmd = COMMANDS.find((c) => c.name === word.value);
    if (!cmd) throw new UsageError(unknownCommand(word.value));
    const ctx = parseCommand(cmd, argv.filter((_, i) => i !== word.index));
    if (ctx.values.help) {
      process.stdout.write(`${cmd.help}\n`);
      return 0;
    }
    return await cmd.run(ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`prefix-handles: ${err.message}\nRun 'prefix-handles ${cmd ? `${cmd.name} ` : ''}--help'.\n`);
      return 2;
    }
    if (err instanceof ApiError || err instanceof CliError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

// `prefix-handles expand … | head`: a reader that stops early is not a failure of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

// process.exitCode rather than process.exit(): stdout piped to a file or another program is flushed first.
process.exitCode = (await main(process.argv.slice(2))) ?? process.exitCode;
