import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { nearest } from '../domain/nearest';
import { createApi, type Api } from './api';
import { printable } from './table';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | undefined>;

/** Wrong command line: exit 2, with a pointer to --help. */
export class UsageError extends Error {}
/** A failure to report as one line: exit 1. */
export class CliError extends Error {}

export interface Context {
  values: Values;
  positionals: string[];
  /** The API client; resolving the key is deferred so `serve` and `--help` never need one. */
  api(): Api;
}

export interface Command {
  name: string;
  summary: string;
  /** The full --help text. */
  help: string;
  options: Options;
  /** [min, max] positionals. */
  positionals: [number, number];
  /** The exit code; undefined leaves the process running (serve). */
  run(ctx: Context): Promise<number | undefined>;
}

/** Options of every command that talks to the API. */
export const API_OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
} satisfies Options;

export const API_HELP = `  --url URL         service base URL (env PH_URL; default http://HOST:PORT when those are set, as for the service, else http://127.0.0.1:8787)
  --key KEY         API key (env PH_API_KEY; else the file <PH_DATA_DIR or ./data>/api-key)`;

export function parseCommand(cmd: Command, args: string[]): Context {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    // node:util's messages run on with advice about "--"; the first sentence is the useful part. A misspelt option
    // is named with the nearest the command takes, as the API names a misspelt query parameter's.
    const first = (err as Error).message.split('. ')[0]!;
    const given = /^Unknown option '--([^'=]+)'/.exec(first)?.[1];
    const near = given === undefined ? undefined : nearest(given, [...Object.keys(cmd.options), 'help']);
    throw new UsageError(near ? `${first}; did you mean --${near}?` : first);
  }
  const positionals = parsed.positionals;
  const values = parsed.values as Values;
  if (!values.help) {
    const [min, max] = cmd.positionals;
    // Which argument: the command's usage line names them (`mint <kind> <file|->`).
    if (positionals.length < min)
      throw new UsageError(`missing argument${min - positionals.length > 1 ? 's' : ''}: ${cmd.help.split('\n')[0]!.replace(/^Usage: /, '')}`);
    if (positionals.length > max) throw new UsageError(`unexpected argument '${positionals[max]}'`);
  }
  let api: Api | undefined;
  return {
    values,
    positionals,
    api: () => (api ??= createApi(baseUrl(values.url as string | undefined), ...apiKey(values.key as string | undefined))),
  };
}

/**
 * Where the service listens when the CLI runs in its environment (PORT and HOST, as src/config.ts reads them: a
 * `docker exec` into its container, its env file sourced), else the default. A wildcard address is called on the
 * loopback; a PORT of 0 (any free port) names none to call.
 */
function serviceAddress(): string {
  const { PORT: port, HOST: host } = process.env;
  // HOST alone is not the service's: tcsh exports the machine's name under it.
  if (!(port && /^[0-9]+$/.test(port) && Number(port) > 0 && Number(port) <= 65535)) return 'http://127.0.0.1:8787';
  const p = Number(port);
  const h = !host || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${p}`;
}

export function baseUrl(flag: string | undefined): string {
  const url = (flag ?? process.env.PH_URL ?? serviceAddress()).replace(/\/+$/, '');
  // Not a URL is a mistake in how the command was called (exit 2), not a service that cannot be reached.
  let protocol = '';
  try {
    protocol = new URL(url).protocol;
  } catch {
    // not a URL at all
  }
  const name = flag !== undefined ? '--url' : process.env.PH_URL !== undefined ? 'PH_URL' : 'HOST';
  if (protocol !== 'http:' && protocol !== 'https:') throw new UsageError(`${name} must be an http(s) URL, e.g. http://127.0.0.1:8787 (got ${JSON.stringify(url)})`);
  // The API's /v1, or an SDK's proxy base URL: the commands add /v1/… themselves, and the proxy asks for x-ph-key.
  // Only those: a service behind a reverse proxy may be at any path of its own (`/proxy/ph`).
  const extra = /\/proxy(?:\/(?:openai|anthropic)(?:\/v1)?)?$|\/v1$/.exec(new URL(url).pathname);
  if (extra) throw new UsageError(`${name} is the service's address, without ${extra[0].startsWith('/proxy') ? 'the proxy path' : '/v1'} (got ${JSON.stringify(url)}: use ${JSON.stringify(url.slice(0, url.length - extra[0].length))})`);
  return url;
}

/** The key, and where it was read (named when the service refuses it). */
function apiKey(flag: string | undefined): [string, string] {
  const key = flag ?? process.env.PH_API_KEY;
  if (key) return [key, flag !== undefined ? '--key' : 'PH_API_KEY'];
  // The service writes this file on its first start (README: Quick start).
  const file = join(resolve(process.env.PH_DATA_DIR ?? './data'), 'api-key');
  try {
    return [readFileSync(file, 'utf8').trim(), file];
  } catch {
    throw new CliError(`no API key: pass --key, set PH_API_KEY, or start the service once so it writes ${file}`);
  }
}

/** Reads a file argument, '-' meaning stdin. */
export function readInput(path: string): Buffer {
  try {
    return readFileSync(path === '-' ? 0 : path);
  } catch (err) {
    throw new CliError(`cannot read ${path === '-' ? 'stdin' : path}: ${(err as Error).message}`);
  }
}

/** A word the shell passes as it is, else in single quotes (a model name with a space, a quote in it). */
const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

/**
 * The line under a page that has a next one: its cursor and each of `names` this page was asked with, so the next
 * page is asked the same way (the same list, filters, page size and service). The key is never printed, a secret on a
 * terminal or in a log: a page asked with --key says `--key <key>`, a placeholder to fill, so the next page is not
 * asked unawares with another tenant's key from PH_API_KEY or the key file (run as printed, the shell refuses it).
 * Values are printed as the table prints text (control characters as escapes), then quoted for the shell.
 */
export function moreLine(cursor: string, values: Values, names: readonly string[]): string {
  // A flag (--no-handle) is said alone: its value is no argument.
  const same = names.filter((k) => values[k] !== undefined && values[k] !== false).map((k) => (values[k] === true ? ` --${k}` : ` --${k} ${shellWord(printable(String(values[k])))}`));
  return `more: --cursor ${shellWord(printable(cursor))}${same.join('')}${values.key !== undefined ? ' --key <key>' : ''}`;
}
