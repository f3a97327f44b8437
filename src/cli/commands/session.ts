import { ApiError, seg } from '../api';
import { API_HELP, API_OPTIONS, CliError, UsageError, type Command } from '../command';
import { printMinted, readJson, type MintResult } from './mint';

const ACTIONS = ['start', 'append'];

export const session: Command = {
  name: 'session',
  summary: 'start a session (on a bundle, or without one), or append messages to one',
  help: `Usage: prefix-handles session start [<bundle-ref>] [--name NAME]
       prefix-handles session append <session-ref> <messages.json|-> [--if-match V]

start    a session whose prompt begins with the bundle (pinned to its version now), or,
         without one, a session of the conversation alone, for a proxy call that names
         its fixed prefix in x-ph-prefix; prints "<ref>\\t<sha256>": the session's
         version 1, no messages yet
append   the file ('-': stdin) is a JSON array of messages, as the API takes them
         ({ "role": "user"|"assistant", "content": string | blocks }); they become the
         session's next version, printed as "<ref>\\t<sha256>" (ses_…@N: N is the
         version a next --if-match names)

Options:
  --name NAME       start: a label for people
  --if-match V      append: only if the session is still at version V (a stale V is a
                    version_conflict naming the current one, and nothing is appended);
                    without it, the messages go after whatever is latest
${API_HELP}`,
  options: { ...API_OPTIONS, name: { type: 'string' }, 'if-match': { type: 'string' } },
  positionals: [0, 3],
  async run({ values, positionals, api }) {
    const [action, ref, file] = positionals;
    if (action === undefined) throw new UsageError(`missing argument: prefix-handles session ${ACTIONS.join('|')} …`);
    if (!ACTIONS.includes(action)) throw new UsageError(`unknown action '${action}' (${ACTIONS.join(', ')})`);
    if (action === 'start') {
      if (file !== undefined) throw new UsageError(`unexpected argument '${file}'`);
      if (values['if-match'] !== undefined) throw new UsageError('--if-match is for append: a new session has no version yet');
      const r = await api().json<MintResult>('POST', '/v1/sessions', { ...(ref !== undefined ? { base: ref } : {}), ...(values.name !== undefined ? { name: values.name } : {}) });
      // No volatility warning: the base's was given when the bundle was made.
      printMinted(r, 'a new session', false);
      return 0;
    }
    if (ref === undefined || file === undefined) throw new UsageError('missing argument: prefix-handles session append <session-ref> <messages.json|-> [--if-match V]');
    if (values.name !== undefined) throw new UsageError('--name is for start: a session keeps the name it started with');
    // A ref's @N is the version the session must be at, as the proxy takes it: chaining the refs appends print
    // refuses to append after someone else's turn. A bare id appends after whatever is latest.
    const cut = ref.indexOf('@');
    const [id, at] = cut < 0 ? [ref, undefined] : [ref.slice(0, cut), ref.slice(cut + 1)];
    const given = values['if-match'] === undefined ? undefined : versionTag(String(values['if-match']));
    const fromRef = at === undefined ? undefined : versionTag(at);
    if (given !== undefined && fromRef !== undefined && given !== fromRef) throw new UsageError(`${ref} names version ${at}, --if-match ${String(values['if-match'])} another: give one`);
    const ifMatch = given ?? fromRef;
    const messages = readJson(file);
    if (!Array.isArray(messages)) throw new CliError(`${file}: a JSON array of messages is expected, not ${messages === null ? 'null' : typeof messages === 'object' ? 'an object' : `a ${typeof messages}`}`);
    let r: MintResult;
    try {
      r = await api().json<MintResult>('POST', `/v1/sessions/${seg(id)}/messages`, { messages }, ifMatch ? { 'if-match': ifMatch } : {});
    } catch (err) {
      // A stale version: the way on is to read what was appended since, then name the version it is at now.
      if (!(err instanceof ApiError) || err.problem?.code !== 'version_conflict') throw err;
      const current = (err.problem as { current_version?: number }).current_version;
      throw new CliError(`${err.message}\nnothing was appended: see what ${id} holds now ('prefix-handles show ${id}'), then append to ${id}@${current ?? '<its version>'}`);
    }
    // No volatility warning: a batch is appended once and never minted again, so its timestamps break no cache.
    printMinted(r, 'nothing appended', false);
    return 0;
  },
};

/** --if-match V: a version number (quoted or not), or * for any; sent as the strong tag the API compares. */
function versionTag(v: string): string {
  if (v === '*') return v;
  const m = /^(?:"([1-9][0-9]{0,14})"|([1-9][0-9]{0,14}))$/.exec(v);
  if (!m) throw new UsageError(`a session version is a number such as 3 (the N of the ses_…@N an append printed), or * for --if-match; not '${v}'`);
  return `"${m[1] ?? m[2]}"`;
}
