import { ApiError, seg } from '../api';
import { API_HELP, API_OPTIONS, CliError, moreLine, UsageError, type Command } from '../command';
import { printable, table, tokens, volatilityNote, when, type VolatilityMeta } from '../table';

/** A handle as GET /v1/handles lists it. */
interface HandleLine {
  id: string;
  type: 'artifact' | 'bundle' | 'session';
  kind: string | null;
  name: string | null;
  metadata: unknown;
  latest_version: number;
  created_at: string;
}

/** A version as GET /v1/handles/{ref} gives it: the fields shown. */
interface Version {
  version: number;
  ref: string;
  digest: string;
  size: number;
  created_at: string;
  members?: string[];
  base?: string | null;
  message_count?: number;
  meta?: { tokens?: Record<string, number>; volatility?: VolatilityMeta };
}

interface Handle extends HandleLine {
  version: Version;
  versions: Version[];
}

/** What GET /v1/handles?kind= takes: a handle type, or an artifact's kind. */
const KINDS = ['artifact', 'bundle', 'session', 'system', 'document', 'tools', 'messages'];

const kindOf = (h: Pick<HandleLine, 'type' | 'kind'>) => (h.kind ? `${h.type}/${h.kind}` : h.type);

export const handles: Command = {
  name: 'handles',
  summary: "the tenant's handles, a page at a time",
  help: `Usage: prefix-handles handles [--kind K] [--limit N] [--cursor C] [--json]

Lists the handles (deleted ones left out) in id order, a page at a time: id, kind,
name, newest version, when it was made. 'prefix-handles show <id>' describes one.

Options:
  --kind K          only one type (artifact, bundle, session) or artifact kind (system,
                    document, tools, messages)
  --limit N         handles per page, 1 to 500 (50 by default)
  --cursor C        the next page: the cursor the line under the previous page names
  --json            the API's JSON (GET /v1/handles) instead
${API_HELP}`,
  options: { ...API_OPTIONS, kind: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [0, 0],
  async run({ values, api }) {
    const q = new URLSearchParams();
    if (values.kind !== undefined) {
      const k = String(values.kind);
      if (!KINDS.includes(k)) throw new UsageError(`--kind: one of ${KINDS.join(', ')} (got '${k}')`);
      q.set('kind', k);
    }
    if (values.limit !== undefined) {
      const n = String(values.limit);
      if (!/^[1-9]\d{0,2}$/.test(n) || Number(n) > 500) throw new UsageError(`--limit: a whole number of handles from 1 to 500 is expected, not '${n}'`);
      q.set('limit', n);
    }
    if (values.cursor !== undefined) q.set('cursor', String(values.cursor));
    const body = await api().json<{ handles: HandleLine[]; next_cursor: string | null }>('GET', `/v1/handles${q.size ? `?${q}` : ''}`);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
      return 0;
    }
    const rows = body.handles.map((h) => [h.id, kindOf(h), h.name ?? '', String(h.latest_version), when(h.created_at)]);
    const list = rows.length ? table(['handle', 'kind', 'name', 'newest', 'created'], rows, ['left', 'left', 'left', 'right', 'left']) : `no handles${values.kind !== undefined ? ` of kind ${String(values.kind)}` : ''}`;
    // The next page is the same list's: its kind and page size go with its cursor.
    process.stdout.write(`${list}${body.next_cursor ? `\n\n${moreLine(body.next_cursor, values, ['kind', 'limit', 'url'])}` : ''}\n`);
    return 0;
  },
};

/** Versions listed by default: a session has one per turn. */
const VERSIONS_SHOWN = 50;

export const show: Command = {
  name: 'show',
  summary: 'describe a handle: kind, name, versions, members or base',
  help: `Usage: prefix-handles show <ref> [--versions N] [--json]

Describes a handle: its kind and name, a row per version (digest, bytes, tokens;
a bundle's member count, a session's message count), the members of the ref's
version (a bundle) or its base (a session), and volatile values it holds.

Options:
  --versions N      list the newest N versions (${VERSIONS_SHOWN} by default; a session has one per turn)
  --json            the API's JSON (GET /v1/handles/{ref}?versions=N) instead
${API_HELP}`,
  options: { ...API_OPTIONS, versions: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ values, positionals, api }) {
    const n = values.versions === undefined ? String(VERSIONS_SHOWN) : String(values.versions);
    // The API lists up to 1,000,000.
    if (!/^[1-9]\d{0,6}$/.test(n)) throw new UsageError(`--versions: a whole number of versions from 1 is expected, not '${n}'`);
    const body = await api().json<Handle>('GET', `/v1/handles/${seg(positionals[0]!)}?versions=${n}`);
    process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : `${showText(body)}\n`);
    return 0;
  },
};

function showText(h: Handle): string {
  const head = [`handle ${h.id}  ${kindOf(h)}${h.name ? `  "${printable(h.name)}"` : ''}`, `created ${when(h.created_at)}, ${h.latest_version} version${h.latest_version === 1 ? '' : 's'}`];
  if (h.metadata !== null && h.metadata !== undefined) head.push(printable(`metadata ${JSON.stringify(h.metadata)}`));
  const extra: Array<[string, (v: Version) => string]> =
    h.type === 'bundle' ? [['members', (v) => String(v.members?.length ?? 0)]] : h.type === 'session' ? [['messages', (v) => String(v.message_count ?? 0)]] : [];
  const rows = h.versions.map((v) => [
    `${v.version}${v.version === h.version.version ? ' *' : ''}`,
    when(v.created_at),
    v.digest,
    tokens(v.size),
    v.meta?.tokens ? tokens(v.meta.tokens.o200k_base) : '',
    v.meta?.tokens ? tokens(v.meta.tokens.anthropic) : '',
    ...extra.map(([, f]) => f(v)),
  ]);
  const parts = [head.join('\n')];
  const older = h.versions.length ? h.versions[0]!.version - 1 : 0;
  parts.push(
    table(['version', 'created', 'sha256', 'bytes', 'tokens o200k', '≈ anthropic', ...extra.map(([name]) => name)], rows, ['right', 'left', 'left', 'right', 'right', 'right', 'right']) +
      (older ? `\n${older} older version${older === 1 ? '' : 's'} not listed (--versions N lists the newest N)` : ''),
  );
  const v = h.version;
  const about = [`* ${v.ref}${v.version === h.latest_version ? ' (the latest)' : ''}`];
  if (v.members) about.push(`members, in render order:`, ...v.members.map((m) => `  ${m}`));
  if (v.base !== undefined) about.push(v.base === null ? 'no base: the messages alone' : `base ${v.base}`);
  const note = volatilityNote(v.meta?.volatility);
  if (note) about.push(`${note} (values that usually differ each time content is produced)`);
  parts.push(about.join('\n'));
  return parts.join('\n\n');
}

export const remove: Command = {
  name: 'delete',
  summary: 'delete a handle nothing pins',
  help: `Usage: prefix-handles delete <id>

Deletes the handle (every version of it): expanding it then answers 410 gone.
Refused while a bundle or session that is not deleted pins it: the error names
them; delete those first, or keep it.

Options:
${API_HELP}`,
  options: { ...API_OPTIONS },
  positionals: [1, 1],
  async run({ positionals, api }) {
    const id = positionals[0]!;
    if (id.includes('@')) throw new UsageError(`delete takes a handle id without @version: it deletes every version (${id.slice(0, id.indexOf('@'))})`);
    try {
      await api().json('DELETE', `/v1/handles/${seg(id)}`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.problem?.code !== 'handle_in_use') throw err;
      const referrers = (err.problem as { referrers?: string[] }).referrers ?? [];
      throw new CliError(`${err.message}\nnothing was deleted: ${id} is pinned by ${referrers.length === 1 ? 'this handle' : `these ${referrers.length} handles`} (a deleted handle pins nothing):\n${referrers.map((r) => `  ${r}`).join('\n')}`);
    }
    process.stdout.write(`deleted ${id}: expanding it now answers 410 gone\n`);
    return 0;
  },
};
