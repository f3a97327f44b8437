import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { canonicalJson } from '../../domain/canonical-json';
import { ApiError, seg, type Api } from '../api';
import { expansionFormats } from '../../domain/render/prompt';
import { API_HELP, API_OPTIONS, CliError, UsageError, type Command } from '../command';
import { volatilityNote, type VolatilityMeta } from '../table';

interface LockEntry {
  format: string;
  sha256: string;
  /** The repository's file the artifact version was minted from, relative to the lock file: it must still be that content. */
  file?: string;
}

/** What verify reads of a handle version. */
interface VersionInfo {
  type: string;
  kind: string | null;
  id: string;
  version: { digest: string; meta?: { volatility?: VolatilityMeta } };
}

interface LockFile {
  handles: Record<string, LockEntry>;
  [other: string]: unknown;
}

export const verify: Command = {
  name: 'verify',
  summary: 'check a lock file of refs and digests (for CI)',
  help: `Usage: prefix-handles verify <lockfile>
       prefix-handles verify --write <lockfile> <ref>[=<file>]... [--format F]

Checks every ref in the lock file: its expansion must still have the locked sha256,
and its version must carry no volatility findings (timestamps, epochs, UUIDs, request
ids: values that usually differ each time content is produced, so a re-mint starts a new cached prefix).
Prints one line per handle and exits 1 naming every handle that failed.

The lock file:
  { "handles": { "<ref>": { "format": "anthropic", "sha256": "<hex>" } } }
A bare id follows the latest version, so minting a new version fails the check;
id@version pins one.

An artifact minted from a file in the repository is locked with it, <ref>=<file>
(say art_…@3=prompts/support.txt): the entry keeps the file's path, and verify fails
once the file is no longer that version's content (an edit not minted and locked).
The file must be inside the repository (the nearest directory above the lock file
holding .git, else the lock file's directory): CI checks the repository out alone,
elsewhere, so a path out of it (../x, /etc/x, a link out) is a usage error.
To take the edit: mint it as the next version, lock the ref that prints, commit both:
  prefix-handles mint system prompts/support.txt --version-of art_…
  prefix-handles verify --write prefix.lock.json art_…@4=prompts/support.txt

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
      const info = await describe(api, ref);
      const note = volatilityNote(info.version.meta?.volatility);
      if (note) problems.push(note);
      // A file gone or unreadable fails its handle, not the run; so does one outside the repository (a lock edited by hand).
      const away = entry.file === undefined ? null : outside(repositoryOf(file), resolve(dirname(file), entry.file), entry.file);
      if (away) problems.push(away);
      const digest = entry.file === undefined || away ? undefined : fileProblem(() => fileDigest(resolve(dirname(file), entry.file!), info.kind), problems);
      if (entry.file !== undefined && digest !== undefined) {
        if (digest !== info.version.digest)
          problems.push(
            `${entry.file} changed: it is no longer ${ref}'s content (the file's sha256 ${digest.slice(0, 12)}…, the version's ${info.version.digest.slice(0, 12)}…); mint it ('prefix-handles mint ${info.kind} ${entry.file} --version-of ${info.id}'), lock the ref that prints as <ref>=${entry.file}, and commit both`,
          );
      }
    } catch (err) {
      // A handle that is gone or unknown fails on its own; an unreachable service or a bad key fails them all.
      if (!(err instanceof ApiError) || err.status === 0 || err.status === 401) throw err;
      problems.push(err.message);
    }
    if (problems.length) failed.push(ref);
    for (const p of problems) process.stdout.write(`FAIL  ${ref}  ${p}\n`);
    if (!problems.length) process.stdout.write(`ok    ${ref}  ${entry.format}  ${entry.sha256}${entry.file !== undefined ? `  ${entry.file}` : ''}\n`);
  }
  if (failed.length) {
    process.stderr.write(`verify: ${failed.length} of ${entries.length} handles failed: ${failed.join(', ')}\n`);
    return 1;
  }
  process.stdout.write(`verify: ${entries.length} handle${entries.length === 1 ? '' : 's'} ok\n`);
  return 0;
}

async function write(api: Api, file: string, refs: string[], format: string | undefined): Promise<number> {
  // Every file is checked before anything is read or locked.
  const repo = repositoryOf(file);
  for (const arg of refs) {
    const path = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : null;
    const problem = path === null ? null : outside(repo, path, lockPath(file, path));
    if (problem) throw new UsageError(`${problem} (nothing was locked)`);
  }
  const lock = readLock(file, false);
  // "locked" is said once the file holds it.
  const locked: string[] = [];
  for (const arg of refs) {
    // ref=file: a ref never holds "=" (ids are letters, digits, _ and -).
    const at = arg.indexOf('=');
    const ref = at < 0 ? arg : arg.slice(0, at);
    const f = format ?? lock.handles[ref]?.format ?? 'anthropic';
    const info = await describe(api, ref);
    let bound = lock.handles[ref]?.file;
    if (at >= 0) {
      const path = arg.slice(at + 1);
      if (info.type !== 'artifact') throw new CliError(`${ref} is a ${info.type}: only an artifact is minted from a file (lock its members with theirs)`);
      const digest = fileDigest(path, info.kind);
      if (digest !== info.version.digest)
        throw new CliError(`${path} is not ${ref}'s content (the file's sha256 ${digest.slice(0, 12)}…, the version's ${info.version.digest.slice(0, 12)}…): mint it first ('prefix-handles mint ${info.kind} ${path} --version-of ${info.id}') and lock the ref that prints (nothing was locked)`);
      bound = lockPath(file, path);
      // One file, one version: the file's earlier version leaves the lock, or it would fail on the edit just taken.
      for (const [other, e] of Object.entries(lock.handles))
        if (other !== ref && e.file === bound) {
          delete lock.handles[other];
          locked.push(`unlocked  ${other}  (${bound} is ${ref} now)\n`);
        }
    }
    lock.handles[ref] = { format: f, sha256: sha256(await expand(api, ref, f)), ...(bound !== undefined ? { file: bound } : {}) };
    const note = volatilityNote(info.version.meta?.volatility);
    if (note) process.stderr.write(`warning: ${ref}: ${note} (verify will fail on it)\n`);
    locked.push(`locked  ${ref}  ${f}  ${lock.handles[ref]!.sha256}${bound !== undefined ? `  ${bound}` : ''}\n`);
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

/**
 * The repository a lock file is committed in: the nearest directory at or above it that holds `.git` (a directory, or
 * a worktree's or submodule's file), else the lock file's own directory.
 */
function repositoryOf(lockFile: string): { root: string; git: boolean; lockDir: string } {
  const start = real(dirname(resolve(lockFile)));
  for (let d = start; ; d = dirname(d)) {
    if (existsSync(join(d, '.git'))) return { root: d, git: true, lockDir: start };
    if (dirname(d) === d) return { root: start, git: false, lockDir: start };
  }
}

/**
 * The path a lock keeps for a file: relative to the lock file, with / on every system (the lock is committed and read
 * from anywhere), from their directories' real paths: a file reached through a link from outside the repository is
 * kept by its place in it, which CI has. The file's own name stays (a link in the repository to a file in it is kept).
 */
function lockPath(lockFile: string, path: string): string {
  return relative(real(dirname(resolve(lockFile))), join(real(dirname(resolve(path))), basename(path))).split(sep).join('/');
}

/**
 * Why a file cannot be locked: it is outside the repository, by its real path (a link out of it too) or by the path
 * the lock keeps (`stored`, relative to the lock file: one that climbs out and back in through a link). CI checks the
 * repository out alone, elsewhere: a path that leaves it names nothing there, or someone else's file.
 */
function outside(repo: { root: string; git: boolean; lockDir: string }, path: string, stored: string): string | null {
  const rel = relative(repo.root, real(resolve(path)));
  // Each .. of the kept path (normalized: all leading) climbs one directory from the lock file's, this deep in the repository.
  const depth = relative(repo.root, repo.lockDir).split(sep).filter(Boolean).length;
  const climbs = normalize(stored).split(/[\\/]/).filter((p) => p === '..').length;
  const inside = !isAbsolute(stored) && climbs <= depth && rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  if (inside) return null;
  const where = repo.git ? `the repository (${repo.root})` : `the lock file's directory (${repo.root}; no .git above it)`;
  return `${path} is outside ${where}: a lock file that names a file outside the repository cannot be checked in CI elsewhere, where only the repository is checked out; keep the file in it`;
}

/** The path with its links resolved, as far as it exists (a file not there yet is judged by its directory's). */
function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return dirname(path) === path ? path : join(real(dirname(path)), relative(dirname(path), path));
  }
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const expand = (api: Api, ref: string, format: string) => api.bytes(`/v1/handles/${seg(ref)}/expand?format=${encodeURIComponent(format)}`);

function fileProblem(digest: () => string, problems: string[]): string | undefined {
  try {
    return digest();
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    problems.push(err.message);
    return undefined;
  }
}

const describe = (api: Api, ref: string) => api.json<VersionInfo>('GET', `/v1/handles/${seg(ref)}`);

/**
 * The digest the service gives a file's content as `mint` sends it: a system prompt's or document's bytes as they
 * are, a tools or messages file's JSON canonicalised (RFC 8785), as the service stores it.
 */
function fileDigest(path: string, kind: string | null): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
  if (kind !== 'tools' && kind !== 'messages') return sha256(bytes);
  try {
    return createHash('sha256').update(canonicalJson(JSON.parse(bytes.toString('utf8')))).digest('hex');
  } catch (err) {
    throw new CliError(`${path}: not valid JSON: ${(err as Error).message}`);
  }
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
    Object.values(lock.handles).every((e) => e && typeof e.format === 'string' && typeof e.sha256 === 'string' && (e.file === undefined || typeof e.file === 'string'));
  if (!ok) throw new CliError(`${file}: not a lock file: expected { "handles": { "<ref>": { "format": "…", "sha256": "…" } } }`);
  return lock;
}
