import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { ApiError, seg, type Api } from '../api';
import { expansionFormats } from '../../domain/render/prompt';
import { API_HELP, API_OPTIONS, CliError, UsageError, type Command } from '../command';
import { volatilityNote, type VolatilityMeta } from '../table';

interface LockEntry {
  format: string;
  sha256: string;
}

interface LockFile {
  handles: Record<string, LockEntry>;
  [other: string]: unknown;
}

export const verify: Command = {
  name: 'verify',
  summary: 'check a lock file of refs and digests (for CI)',
  help: `Usage: prefix-handles verify <lockfile>
       prefix-handles verify --write <lockfile> <ref>... [--format F]

Checks every ref in the lock file: its expansion must still have the locked sha256,
and its version must carry no volatility findings (timestamps, epochs, UUIDs, request
ids: values that usually differ each time content is produced, so a re-mint starts a new cached prefix).
Prints one line per handle and exits 1 naming every handle that failed.

The lock file:
  { "handles": { "<ref>": { "format": "anthropic", "sha256": "<hex>" } } }
A bare id follows the latest version, so minting a new version fails the check;
id@version pins one.

Options:
  --write           create or update <lockfile> with the current digests of the refs
                    (other entries are kept); volatility findings are warnings here
  --format F        the expansion format to lock (with --write; default: the entry's, else anthropic)
${API_HELP}`,
  options: { ...API_OPTIONS, write: { type: 'boolean' }, format: { type: 'string' } },
  positionals: [1, Infinity],
  async run({ values, positionals, api }) {
    const [file, ...refs] = positionals as [string, ...string[]];
    if (values.write) {
      if (!refs.length) throw new UsageError('--write needs the refs to lock');
      const format = values.format === undefined ? undefined : String(values.format);
      // As expand: a wrong format is the caller's usage (exit 2), said before any call.
      if (format !== undefined && !(expansionFormats as readonly string[]).includes(format))
        throw new UsageError(`--format: one of ${expansionFormats.join(', ')} (got '${format}')`);
      return write(api(), file, refs, format);
    }
    if (refs.length) throw new UsageError(`unexpected argument '${refs[0]}' (refs are given with --write)`);
    if (values.format !== undefined) throw new UsageError('--format applies to --write; the lock file names each format');
    return check(api(), file);
  },
};

async function check(api: Api, file: string): Promise<number> {
  const entries = Object.entries(readLock(file, true).handles);
  const failed: string[] = [];
  for (const [ref, entry] of entries) {
    const problems: string[] = [];
    try {
      const sha = sha256(await expand(api, ref, entry.format));
      if (sha !== entry.sha256) problems.push(`bytes changed: locked ${entry.sha256}, now ${sha} (${entry.format})`);
      const note = volatilityNote(await volatility(api, ref));
      if (note) problems.push(note);
    } catch (err) {
      // A handle that is gone or unknown fails on its own; an unreachable service or a bad key fails them all.
      if (!(err instanceof ApiError) || err.status === 0 || err.status === 401) throw err;
      problems.push(err.message);
    }
    if (problems.length) failed.push(ref);
    for (const p of problems) process.stdout.write(`FAIL  ${ref}  ${p}\n`);
    if (!problems.length) process.stdout.write(`ok    ${ref}  ${entry.format}  ${entry.sha256}\n`);
  }
  if (failed.length) {
    process.stderr.write(`verify: ${failed.length} of ${entries.length} handles failed: ${failed.join(', ')}\n`);
    return 1;
  }
  process.stdout.write(`verify: ${entries.length} handle${entries.length === 1 ? '' : 's'} ok\n`);
  return 0;
}

async function write(api: Api, file: string, refs: string[], format: string | undefined): Promise<number> {
  const lock = readLock(file, false);
  // "locked" is said once the file holds it.
  const locked: string[] = [];
  for (const ref of refs) {
    const f = format ?? lock.handles[ref]?.format ?? 'anthropic';
    lock.handles[ref] = { format: f, sha256: sha256(await expand(api, ref, f)) };
    const note = volatilityNote(await volatility(api, ref));
    if (note) process.stderr.write(`warning: ${ref}: ${note} (verify will fail on it)\n`);
    locked.push(`locked  ${ref}  ${f}  ${lock.handles[ref]!.sha256}\n`);
  }
  // Sorted refs keep the file's diffs small and stable.
  lock.handles = Object.fromEntries(Object.entries(lock.handles).sort(([a], [b]) => a.localeCompare(b)));
  try {
    writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
  } catch (err) {
    throw new CliError(`cannot write ${file}: ${(err as Error).message} (nothing was locked)`);
  }
  for (const line of locked) process.stdout.write(line);
  return 0;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const expand = (api: Api, ref: string, format: string) => api.bytes(`/v1/handles/${seg(ref)}/expand?format=${encodeURIComponent(format)}`);

async function volatility(api: Api, ref: string): Promise<VolatilityMeta | undefined> {
  const h = await api.json<{ version: { meta?: { volatility?: VolatilityMeta } } }>('GET', `/v1/handles/${seg(ref)}`);
  return h.version.meta?.volatility;
}

function readLock(file: string, mustExist: boolean): LockFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (!mustExist) return { handles: {} };
      throw new CliError(`no lock file ${file}: make it once with 'prefix-handles verify --write ${file} <ref>…' and commit it`);
    }
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let lock: LockFile;
  try {
    lock = JSON.parse(text) as LockFile;
  } catch (err) {
    throw new CliError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  const ok =
    lock && typeof lock === 'object' && lock.handles && typeof lock.handles === 'object' && !Array.isArray(lock.handles) &&
    Object.values(lock.handles).every((e) => e && typeof e.format === 'string' && typeof e.sha256 === 'string');
  if (!ok) throw new CliError(`${file}: not a lock file: expected { "handles": { "<ref>": { "format": "…", "sha256": "…" } } }`);
  return lock;
}
