import { seg } from '../api';
import { API_HELP, API_OPTIONS, CliError, readInput, UsageError, type Command } from '../command';
import { printable, volatilityNote, type VolatilityMeta } from '../table';

const TEXT_KINDS = ['system', 'document'];
const JSON_KINDS = ['tools', 'messages'];

/** What POST /v1/artifacts, /v1/bundles, /v1/sessions and their next versions answer: the fields printed. */
export interface MintResult {
  ref: string;
  digest: string;
  created: boolean;
  meta?: { volatility?: VolatilityMeta };
  /** A tools artifact's Anthropic-defined tools no catalog model has a token figure for. */
  warnings?: Array<{ code: string; detail: string }>;
}

export const mint: Command = {
  name: 'mint',
  summary: 'mint an artifact (or its next version) from a file',
  help: `Usage: prefix-handles mint <kind> <file|-> [--name NAME] [--version-of ID]

Mints an artifact from a file ('-' reads stdin) and prints "<ref>\\t<sha256>".
  system, document   the file's bytes are the text, as-is (invalid UTF-8 is refused)
  tools, messages    the file is JSON: an array of tool definitions or of messages

Options:
  --name NAME       a label for people (new artifacts only)
  --version-of ID   make the next version of artifact ID (or of a ref's artifact) instead;
                    content equal to the latest version returns that version, noted on stderr
${API_HELP}`,
  options: { ...API_OPTIONS, name: { type: 'string' }, 'version-of': { type: 'string' } },
  positionals: [2, 2],
  async run({ values, positionals, api }) {
    const [kind, file] = positionals as [string, string];
    if (![...TEXT_KINDS, ...JSON_KINDS].includes(kind)) throw new UsageError(`unknown kind '${kind}' (system, document, tools, messages)`);
    // The id of the artifact; a ref's "@version" is dropped, since the next version follows the latest.
    const of = (values['version-of'] as string | undefined)?.replace(/@\d+$/, '');
    if (of && values.name !== undefined) throw new UsageError('--name applies to new artifacts, not to --version-of');
    const content = TEXT_KINDS.includes(kind) ? text(readInput(file), file) : readJson(file);

    if (of) {
      // The API takes the next version's content by the artifact's own kind: a kind named here must be that one.
      const current = await api().json<{ type: string; kind: string | null }>('GET', `/v1/handles/${seg(of)}`);
      if (current.type !== 'artifact') throw new CliError(`${of} is a ${current.type}, not an artifact: --version-of takes an artifact`);
      if (current.kind !== kind) throw new CliError(`${of} is a ${current.kind} artifact, not ${kind}: name its own kind`);
    }
    const r = of
      ? await api().json<MintResult>('POST', `/v1/artifacts/${seg(of)}/versions`, { content })
      : await api().json<MintResult>('POST', '/v1/artifacts', { kind, content, ...(values.name !== undefined ? { name: values.name } : {}) });
    printMinted(r, 'the content equals the latest version');
    return 0;
  },
};

/**
 * A new handle or version as mint, bundle and session print it: `<ref>\t<sha256>` on stdout; on stderr, that the
 * latest version was returned unchanged (`same` says why), and the volatile values the content holds.
 */
export function printMinted(r: MintResult, same: string, volatility = true): void {
  process.stdout.write(`${r.ref}\t${r.digest}\n`);
  if (!r.created) process.stderr.write(`unchanged: ${same}, ${r.ref}\n`);
  const note = volatility ? volatilityNote(r.meta?.volatility) : null;
  if (note) process.stderr.write(`warning: ${note}: values like these usually differ each time content is produced: minted again with new ones, it is a new prefix and the cache breaks there\n`);
  for (const w of r.warnings ?? []) process.stderr.write(`warning ${w.code}: ${printable(w.detail)}\n`);
}

function text(bytes: Buffer, file: string): string {
  // fatal: refuse invalid UTF-8 rather than repair it; ignoreBOM: keep a BOM, since it is part of the bytes.
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new CliError(`${file}: not valid UTF-8`);
  }
}

/** A JSON file ('-': stdin), UTF-8. */
export function readJson(file: string): unknown {
  try {
    return JSON.parse(text(readInput(file), file));
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
}
