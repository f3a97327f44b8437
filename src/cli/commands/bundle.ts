import { seg } from '../api';
import { API_HELP, API_OPTIONS, UsageError, type Command } from '../command';
import { printMinted, type MintResult } from './mint';

/** As the API takes them (schemas.ts): a bundle holds 1 to 1,000 members. */
const MAX_MEMBERS = 1000;

export const bundle: Command = {
  name: 'bundle',
  summary: 'bundle artifacts and bundles (or make a bundle\'s next version)',
  help: `Usage: prefix-handles bundle <ref>... [--name NAME] [--version-of ID]

Makes a bundle of the refs, in render order, and prints "<ref>\\t<sha256>" (the
digest of its neutral expansion). Members are artifacts and bundles (a session is
not one), each handle once; a bare id is pinned to its latest version now, so the
bundle never changes when they get new versions: make its next version for that.

Options:
  --name NAME       a label for people (new bundles only)
  --version-of ID   make the next version of bundle ID (or of a ref's bundle) with these
                    members instead; the same members as the latest version return that
                    version, noted on stderr
${API_HELP}`,
  options: { ...API_OPTIONS, name: { type: 'string' }, 'version-of': { type: 'string' } },
  positionals: [1, MAX_MEMBERS],
  async run({ values, positionals, api }) {
    // The id of the bundle; a ref's "@version" is dropped, since the next version follows the latest.
    const of = (values['version-of'] as string | undefined)?.replace(/@\d+$/, '');
    if (of !== undefined && values.name !== undefined) throw new UsageError('--name applies to new bundles, not to --version-of');
    const r = of
      ? await api().json<MintResult>('POST', `/v1/bundles/${seg(of)}/versions`, { members: positionals })
      : await api().json<MintResult>('POST', '/v1/bundles', { members: positionals, ...(values.name !== undefined ? { name: values.name } : {}) });
    printMinted(r, "the members are the latest version's");
    return 0;
  },
};
