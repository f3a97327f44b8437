// Building prompt state from a shell: bundle, session start/append, handles, show, delete — each a thin client over
// the REST API, run as a child process against the service on a loopback port, its output checked against the API's;
// and `request` on a long session's request, which sums its older batches in one row as the dashboard does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shownRuns } from '../../src/domain/session-runs';
import { tokens } from '../../src/cli/table';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { moreLine } from '../../src/cli/command';
import { BIN, cleanEnv } from '../helpers/processes';
import { startCliHarness, type CliHarness, type CliOptions } from '../helpers/cli';
import { assistantMessage, mintBundle, mintSystem, mintTools, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

let h: CliHarness;
beforeAll(async () => {
  h = await startCliHarness('ph-cli-handles-');
});
afterAll(() => h.close());

const cli = (args: string[], opts?: CliOptions) => h.cli(args, opts);
/** `<ref>\t<sha256>\n`, split. */
const minted = (out: string) => {
  expect(out).toMatch(/^(art|bnd|ses)_[0-9A-Za-z]{21}@\d+\t[0-9a-f]{64}\n$/);
  return out.trim().split('\t') as [string, string];
};

describe('building prompt state with the CLI', () => {
  it('answers --help on each new command, and a missing argument or a bad value with exit 2 before any call', async () => {
    const commands = ['bundle', 'session', 'handles', 'show', 'delete'];
    const helps = await Promise.all(commands.map((c) => cli(['help', c])));
    helps.forEach((r, i) => {
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain(`Usage: prefix-handles ${commands[i]}`);
    });
    // No key is given: each is refused before the key or the service is needed.
    const cases: Array<[string[], string]> = [
      [['bundle'], 'missing argument: prefix-handles bundle <ref>... [--name NAME] [--version-of ID]'],
      [['bundle', 'art_x', '--version-of', 'bnd_y', '--name', 'n'], '--name applies to new bundles, not to --version-of'],
      [['session'], 'missing argument: prefix-handles session start|append'],
      [['session', 'resume', 'ses_x'], "unknown action 'resume' (start, append)"],
      [['session', 'start', 'bnd_x', '--if-match', '1'], '--if-match is for append'],
      [['session', 'append', 'ses_x'], 'missing argument: prefix-handles session append <session-ref> <messages.json|-> [--if-match V]'],
      [['session', 'append', 'ses_x', '-', '--if-match', 'W/"3"'], `not 'W/"3"'`],
      [['session', 'append', 'ses_x@2', '-', '--if-match', '3'], 'ses_x@2 names version 2, --if-match 3 another: give one'],
      [['handles', '--kind', 'prompt'], "--kind: one of artifact, bundle, session, system, document, tools, messages (got 'prompt')"],
      [['handles', '--limit', '501'], "--limit: a whole number of handles from 1 to 500 is expected, not '501'"],
      [['handles', 'art_x'], "unexpected argument 'art_x'"],
      [['show'], 'missing argument: prefix-handles show <ref> [--versions N] [--json]'],
      [['show', 'art_x', '--versions', '0'], "--versions: a whole number of versions from 1 is expected, not '0'"],
      [['delete'], 'missing argument: prefix-handles delete <id>'],
      [['delete', 'art_x@2'], 'delete takes a handle id without @version'],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    runs.forEach((r, i) => {
      expect(r.code, `${cases[i]![0].join(' ')}: ${r.err}`).toBe(2);
      expect(r.err).toContain(cases[i]![1]);
      expect(r.out).toBe('');
    });
  }, 90_000);

  it('bundle, session start and append print "<ref>\\t<sha256>" as the API mints them; a stale version appends nothing', async () => {
    const { key, client } = h.t.tenant();
    const sys = await mintSystem(client, 'You are a weather assistant.');
    const tools = await mintTools(client);
    const made = await cli(['bundle', tools.id, sys.ref, '--name', 'weather'], { key });
    expect(made.code, made.err).toBe(0);
    const [bnd, bndDigest] = minted(made.out);
    const described = (await client.get(`/v1/handles/${bnd}`)).json;
    expect(described).toMatchObject({ type: 'bundle', name: 'weather', version: { ref: bnd, digest: bndDigest, members: [tools.ref, sys.ref] } });
    const bndId = bnd.split('@')[0]!;

    // The next version, and the same members again: that version, said so on stderr.
    const sys2 = (await client.post(`/v1/artifacts/${sys.id}/versions`, { content: 'You are a terse weather assistant.' })).json;
    const next = await cli(['bundle', tools.id, sys.id, '--version-of', bnd], { key });
    expect(next.code, next.err).toBe(0);
    expect(minted(next.out)[0]).toBe(`${bndId}@2`);
    expect((await client.get(`/v1/handles/${bndId}@2`)).json.version.members).toEqual([tools.ref, sys2.ref]);
    const same = await cli(['bundle', tools.ref, sys2.ref, '--version-of', bndId], { key });
    expect(same.code, same.err).toBe(0);
    expect(minted(same.out)[0]).toBe(`${bndId}@2`);
    expect(same.err).toBe(`unchanged: the members are the latest version's, ${bndId}@2\n`);

    // A session on it; turns appended from a file and from stdin.
    const started = await cli(['session', 'start', bnd, '--name', 'oslo'], { key });
    expect(started.code, started.err).toBe(0);
    const [ses1] = minted(started.out);
    const ses = ses1.split('@')[0]!;
    expect(ses1).toBe(`${ses}@1`);
    expect((await client.get(`/v1/handles/${ses}`)).json).toMatchObject({ type: 'session', name: 'oslo', version: { base: bnd, message_count: 0 } });
    const turn = h.file('turn.json', JSON.stringify([userMessage('Weather in Oslo?')]));
    const [first, second] = [await cli(['session', 'append', ses1, turn], { key }), await cli(['session', 'append', ses, '-', '--if-match', '2'], { key, input: JSON.stringify([assistantMessage('Cold: 2 °C.')]) })];
    expect(first.code, first.err).toBe(0);
    expect(second.code, second.err).toBe(0);
    const [ses2, digest2] = minted(first.out);
    expect(ses2).toBe(`${ses}@2`);
    expect(minted(second.out)[0]).toBe(`${ses}@3`);
    const latest = (await client.get(`/v1/handles/${ses}`)).json;
    expect(latest.latest_version).toBe(3);
    expect(latest.version.message_count).toBe(2);
    expect(latest.versions.find((v: { version: number }) => v.version === 2).digest).toBe(digest2);

    // Stale: the ref an earlier append printed, or --if-match with an old version: refused, nothing appended, and
    // the way on said.
    const [staleRef, staleFlag] = await Promise.all([cli(['session', 'append', ses2, turn], { key }), cli(['session', 'append', ses, turn, '--if-match', '"1"'], { key })]);
    for (const [r, v] of [[staleRef, 2], [staleFlag, 1]] as const) {
      expect(r.code, r.err).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toBe(
        `version_conflict: ${ses} is at version 3, not ${v} (header:if-match: expected version ${v}; the latest is 3)\nnothing was appended: see what ${ses} holds now ('prefix-handles show ${ses}'), then append to ${ses}@3\n`,
      );
    }
    expect((await client.get(`/v1/handles/${ses}`)).json.latest_version).toBe(3);

    // Without a bundle: a session of the conversation alone, for a proxy call that sends its prefix in x-ph-prefix.
    const bare = await cli(['session', 'start', '--name', 'bare'], { key });
    expect(bare.code, bare.err).toBe(0);
    const [bareRef] = minted(bare.out);
    const bareHandle = (await client.get(`/v1/handles/${bareRef}`)).json;
    expect(bareHandle).toMatchObject({ type: 'session', name: 'bare', version: { ref: bareRef, message_count: 0 } });
    expect(bareHandle.version.base ?? null).toBeNull();
  }, 60_000);

  it('bundle and session errors: unknown, foreign and invalid refs, a session as a member, bad JSON, messages the API refuses', async () => {
    const { key, client } = h.t.tenant();
    const other = h.t.tenant();
    const sys = await mintSystem(client);
    const foreign = await mintSystem(other.client);
    const ses = await startSession(client, { messages: [userMessage('hi')] });
    const bnd = await mintBundle(client, [sys.id]);
    const notJson = h.file('broken.json', '[{"role": "user", "content": "hi"');
    const anObject = h.file('object.json', JSON.stringify({ messages: [userMessage('hi')] }));
    const badRole = h.file('role.json', JSON.stringify([{ role: 'system', content: 'be nice' }]));
    const [unknown, theirs, invalid, sessionMember, notABundle, broken, object, role, noSession, missingFile] = await Promise.all([
      cli(['bundle', sys.id, 'art_AAAAAAAAAAAAAAAAAAAAA'], { key }),
      cli(['bundle', foreign.id], { key }),
      cli(['bundle', 'nonsense'], { key }),
      cli(['bundle', sys.id, ses.id], { key }),
      cli(['session', 'start', sys.ref], { key }),
      cli(['session', 'append', ses.id, notJson], { key }),
      cli(['session', 'append', ses.id, anObject], { key }),
      cli(['session', 'append', ses.id, badRole], { key }),
      cli(['session', 'append', 'ses_AAAAAAAAAAAAAAAAAAAAA', '-'], { key, input: JSON.stringify([userMessage('hi')]) }),
      cli(['session', 'append', ses.id, h.file('x', '') + '-missing'], { key }),
    ]);
    for (const r of [unknown, theirs, invalid, sessionMember, notABundle, broken, object, role, noSession, missingFile]) {
      expect(r.code, r.err).toBe(1);
      expect(r.out).toBe('');
    }
    expect(unknown.err).toBe('not_found: handle art_AAAAAAAAAAAAAAAAAAAAA does not exist (/members/1)\n');
    // Another tenant's handle is as missing as one that never was.
    expect(theirs.err).toBe(`not_found: handle ${foreign.id} does not exist (/members/0)\n`);
    expect(invalid.err).toMatch(/^invalid_request: .*"nonsense" is not a handle ref/);
    expect(sessionMember.err).toContain(`${ses.id} is a session; bundles hold artifacts and bundles`);
    expect(notABundle.err).toContain(`${sys.ref} is not a bundle`);
    expect(broken.err).toMatch(new RegExp(`^${notJson}: not valid JSON: `));
    expect(object.err).toBe(`${anObject}: a JSON array of messages is expected, not an object\n`);
    expect(role.err).toMatch(/^invalid_request: .*\/messages\/0\/role/);
    expect(noSession.err).toBe('not_found: handle ses_AAAAAAAAAAAAAAAAAAAAA does not exist (path:id)\n');
    expect(missingFile.err).toMatch(/^cannot read .*-missing: ENOENT/);
    // Nothing was made or appended by any of them.
    expect((await client.get('/v1/handles?kind=bundle')).json.handles.map((x: { id: string }) => x.id)).toEqual([bnd.id]);
    expect((await client.get('/v1/handles?kind=session')).json.handles).toHaveLength(1);
    expect((await client.get(`/v1/handles/${ses.id}`)).json.latest_version).toBe(1);
  }, 60_000);

  it("handles: the 'more:' line asks the next page as this one was asked (its kind and page size), to the list's end", async () => {
    const { key, client } = h.t.tenant();
    const arts = await Promise.all([mintSystem(client, 'one'), mintSystem(client, 'two'), mintTools(client), mintSystem(client, 'three')]);
    await mintBundle(client, [arts[0]!.id]);
    const pages: string[][] = [];
    let args = ['handles', '--kind', 'artifact', '--limit', '1'];
    for (let more: RegExpExecArray | null = null; pages.length < 6; args = ['handles', ...more[1]!.split(' ')]) {
      const run = await cli(args, { key });
      expect(run.code, run.err).toBe(0);
      pages.push(run.out.split('\n').filter((l) => /^(art|bnd|ses)_/.test(l)).map((l) => l.split(/\s+/)[0]!));
      more = /^more: (.*)$/m.exec(run.out);
      if (!more) break;
      expect(more[1]).toMatch(/^--cursor \S+ --kind artifact --limit 1$/);
    }
    // A page of one each, artifacts only, every artifact once in id order: the line kept --kind and --limit.
    expect(pages.filter((p) => p.length).map((p) => p.length)).toEqual([1, 1, 1, 1]);
    expect(pages.flat()).toEqual(arts.map((a) => a.id).sort());
  });

  it('the next page line quotes what the shell would split, escapes control characters, and says --key <key> for a key given, never the key', () => {
    const values = { handle: 'art_x@2', model: "gpt 4's", limit: '2', key: 'ph_secret', url: 'http://127.0.0.1:41100', json: undefined };
    expect(moreLine('req_1', values, ['handle', 'class', 'model', 'limit', 'url'])).toBe(`more: --cursor req_1 --handle art_x@2 --model 'gpt 4'\\''s' --limit 2 --url http://127.0.0.1:41100 --key <key>`);
    expect(moreLine('req_1', values, ['handle', 'class', 'model', 'limit', 'url'])).not.toContain('ph_secret');
    // Without --key: nothing of it (the key is read again from where it came).
    expect(moreLine('req_1', { ...values, key: undefined }, ['model'])).toBe(`more: --cursor req_1 --model 'gpt 4'\\''s'`);
    // A model named with an escape sequence is printed as the table prints it, never as the control character.
    expect(moreLine('req_1', { model: 'm\u001b[2Jx\r' }, ['model'])).toBe(`more: --cursor req_1 --model 'm\\u001b[2Jx\\u000d'`);
  });

  it("the next page line runs in a shell as printed (a model with a space and a quote), the key's placeholder filled in", async () => {
    const { key, client } = h.t.tenant();
    const model = `team/o'brien "4" mini`;
    for (const q of ['one', 'two', 'three']) {
      const r = await client.post('/v1/render', { format: 'anthropic', request: { model, max_tokens: 8, messages: [userMessage(q)] } });
      expect(r.status, r.text).toBe(200);
    }
    // In the list's order, as the API gives it.
    const ids = (await client.get(`/v1/requests?model=${encodeURIComponent(model)}`)).json.requests.map((r: { id: string }) => r.id) as string[];
    expect(ids).toHaveLength(3);
    // Another tenant's key where the CLI would look for one: the line must not let the next page go out with it.
    const other = h.t.tenant().key;
    const first = await h.cli(['requests', '--model', model, '--limit', '1', '--key', key], { key: other });
    expect(first.code, first.err).toBe(0);
    const line = /^more: (.*)$/m.exec(first.out)![1]!;
    expect(line).toMatch(/ --key <key>$/);
    expect(line).not.toContain(key);
    const sh = (command: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((ok, fail) => {
        const child = spawn('sh', ['-c', command], { env: { ...cleanEnv(), PH_DATA_DIR: join(h.dir, 'no-such-dir'), PH_URL: h.url, PH_API_KEY: other } });
        let out = '';
        let err = '';
        child.stdout.on('data', (b: Buffer) => (out += b));
        child.stderr.on('data', (b: Buffer) => (err += b));
        child.on('error', fail);
        child.on('close', (code) => ok({ code, out, err }));
      });
    // As printed, the shell refuses the placeholder (no file named key): nothing is asked with the other key.
    const asPrinted = await sh(`'${process.execPath}' '${BIN}' requests ${line}`);
    expect(asPrinted.code).not.toBe(0);
    expect(asPrinted.out).toBe('');
    // Filled in, the next page is the same list's: the second request of that model, with a line to the third.
    const next = await sh(`'${process.execPath}' '${BIN}' requests ${line.replace('<key>', key)}`);
    expect(next.code, next.err).toBe(0);
    const listed = (out: string) => [...out.replace(/^more: .*$/m, '').matchAll(/(req_\w{21})/g)].map((m) => m[1]);
    expect(listed(first.out)).toEqual([ids[0]]);
    expect(listed(next.out)).toEqual([ids[1]]);
    const third = await sh(`'${process.execPath}' '${BIN}' requests ${/^more: (.*)$/m.exec(next.out)![1]!.replace('<key>', key)}`);
    expect(listed(third.out)).toEqual([ids[2]]);
    expect(third.out).not.toContain('more:');
  });

  it('handles lists a page at a time with the cursor to the next; show describes versions, members and base; --json is the API', async () => {
    const { key, client } = h.t.tenant();
    const sys = await mintSystem(client, 'You are a careful assistant. Today is 2026-01-01T12:00:00Z.');
    await client.post(`/v1/artifacts/${sys.id}/versions`, { content: 'You are a careful assistant.' });
    const tools = await mintTools(client);
    const bnd = await mintBundle(client, [tools.id, sys.id], 'kit \u001b[2J');
    const ses = await startSession(client, { base: bnd.ref, messages: [userMessage('hi')] });
    await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [assistantMessage('hello')] });
    const ids = [sys.id, tools.id, bnd.id, ses.id].sort();

    const [all, page1, artifacts, asJson, none] = await Promise.all([
      cli(['handles'], { key }),
      cli(['handles', '--limit', '3'], { key }),
      cli(['handles', '--kind', 'artifact'], { key }),
      cli(['handles', '--kind', 'system', '--json'], { key }),
      cli(['handles', '--kind', 'messages'], { key }),
    ]);
    for (const r of [all, page1, artifacts, asJson, none]) expect(r.code, r.err).toBe(0);
    const rows = (out: string) => out.split('\n').filter((l) => /^(art|bnd|ses)_/.test(l));
    // In id order, as the API lists them: a row each with kind, name (escaped), newest version, created.
    expect(rows(all.out).map((l) => l.split(/\s+/)[0])).toEqual(ids);
    expect(rows(all.out).find((l) => l.startsWith(bnd.id))).toMatch(new RegExp(`^${bnd.id} +bundle +kit \\\\u001b\\[2J +1 +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));
    expect(rows(all.out).find((l) => l.startsWith(sys.id))).toMatch(new RegExp(`^${sys.id} +artifact/system +2 +\\S+Z$`));
    expect(rows(all.out).find((l) => l.startsWith(ses.id))).toMatch(/ session +2 /);
    expect(all.out).not.toContain('more:');
    expect(rows(page1.out).map((l) => l.split(/\s+/)[0])).toEqual(ids.slice(0, 3));
    expect(page1.out.endsWith(`\n\nmore: --cursor ${ids[2]} --limit 3\n`)).toBe(true);
    const page2 = await cli(['handles', '--limit', '3', '--cursor', ids[2]!], { key });
    expect(rows(page2.out).map((l) => l.split(/\s+/)[0])).toEqual(ids.slice(3));
    expect(rows(artifacts.out).map((l) => l.split(/\s+/)[0])).toEqual([sys.id, tools.id].sort());
    expect(JSON.parse(asJson.out)).toEqual((await client.get('/v1/handles?kind=system')).json);
    expect(none.out).toBe('no handles of kind messages\n');

    const [artifact, older, bundle, session, json] = await Promise.all([
      cli(['show', `${sys.id}@1`], { key }),
      cli(['show', sys.id, '--versions', '1'], { key }),
      cli(['show', bnd.id], { key }),
      cli(['show', ses.id], { key }),
      cli(['show', ses.ref, '--json'], { key }),
    ]);
    for (const r of [artifact, older, bundle, session, json]) expect(r.code, r.err).toBe(0);
    const a = (await client.get(`/v1/handles/${sys.id}@1`)).json;
    expect(artifact.out).toMatch(new RegExp(`^handle ${sys.id}  artifact/system\\ncreated \\S+Z, 2 versions\\n`));
    // A row per version: digest, bytes, tokens; the ref's own version marked, and what it holds said.
    for (const v of a.versions) {
      expect(artifact.out).toMatch(new RegExp(`^ *${v.version}${v.version === 1 ? ' \\*' : ''} +\\S+Z +${v.digest} +${tokens(v.size)} +${tokens(v.meta.tokens.o200k_base)} +${tokens(v.meta.tokens.anthropic)}$`, 'm'));
    }
    expect(artifact.out).toContain(`\n* ${sys.id}@1\n1 volatile value: iso_timestamp "2026-01-01T12:00:00Z" at byte`);
    expect(older.out).toContain('\n1 older version not listed (--versions N lists the newest N)');
    expect(older.out).not.toMatch(/^ *1 +\S+Z/m);
    expect(older.out).toContain(`* ${sys.id}@2 (the latest)`);
    expect(bundle.out).toContain(`handle ${bnd.id}  bundle  "kit \\u001b[2J"`);
    expect(bundle.out).not.toContain('\u001b');
    expect(bundle.out).toMatch(/ members\n/);
    expect(bundle.out).toContain(`members, in render order:\n  ${tools.ref}\n  ${sys.id}@2\n`);
    expect(session.out).toMatch(/ messages\n/);
    expect(session.out).toMatch(/^ *2 \* +\S+Z +[0-9a-f]{64} +[\d,]+ +[\d,]+ +[\d,]+ +2$/m);
    expect(session.out).toContain(`* ${ses.id}@2 (the latest)\nbase ${bnd.ref}`);
    expect(JSON.parse(json.out)).toEqual((await client.get(`/v1/handles/${ses.ref}?versions=50`)).json);

    // Unknown, foreign, invalid: the API's problem, exit 1.
    const theirs = await mintSystem(h.t.tenant().client);
    const [unknown, foreign, invalid] = await Promise.all([cli(['show', 'bnd_AAAAAAAAAAAAAAAAAAAAA'], { key }), cli(['show', theirs.id], { key }), cli(['show', 'bnd_short'], { key })]);
    expect([unknown.code, foreign.code, invalid.code]).toEqual([1, 1, 1]);
    expect(unknown.err).toBe('not_found: handle bnd_AAAAAAAAAAAAAAAAAAAAA does not exist (path:ref)\n');
    expect(foreign.err).toBe(`not_found: handle ${theirs.id} does not exist (path:ref)\n`);
    expect(invalid.err).toMatch(/^invalid_request: "bnd_short" is not a handle ref/);
  }, 60_000);

  it('delete: refused naming what pins it while pinned, nothing deleted; then in order, and the handle is gone', async () => {
    const { key, client } = h.t.tenant();
    const sys = await mintSystem(client);
    const bnd = await mintBundle(client, [sys.id]);
    const ses = await startSession(client, { base: bnd.ref });
    const other = await mintBundle(client, [sys.ref]);
    const theirs = await mintSystem(h.t.tenant().client);

    const [pinned, unknown, foreign, wrongKind] = await Promise.all([
      cli(['delete', sys.id], { key }),
      cli(['delete', 'art_AAAAAAAAAAAAAAAAAAAAA'], { key }),
      cli(['delete', theirs.id], { key }),
      cli(['delete', 'nonsense'], { key }),
    ]);
    expect(pinned.code).toBe(1);
    const referrers = [bnd.id, other.id].sort();
    expect(pinned.err).toBe(`handle_in_use: ${sys.id} is still pinned by ${referrers.join(', ')}\nnothing was deleted: ${sys.id} is pinned by these 2 handles (a deleted handle pins nothing):\n  ${referrers.join('\n  ')}\n`);
    expect((await client.get(`/v1/handles/${sys.id}`)).status).toBe(200);
    expect([unknown.code, foreign.code, wrongKind.code]).toEqual([1, 1, 1]);
    // The API's pointer: DELETE /v1/handles/{ref} names its parameter as GET does.
    expect(unknown.err).toBe('not_found: handle art_AAAAAAAAAAAAAAAAAAAAA does not exist (path:ref)\n');
    expect(foreign.err).toBe(`not_found: handle ${theirs.id} does not exist (path:ref)\n`);
    expect(wrongKind.err).toMatch(/^invalid_request: .*path:ref/);

    const bundlePinned = await cli(['delete', bnd.id], { key });
    expect(bundlePinned.code).toBe(1);
    expect(bundlePinned.err).toContain(`is pinned by this handle (a deleted handle pins nothing):\n  ${ses.id}\n`);
    for (const id of [ses.id, bnd.id, other.id, sys.id]) {
      const r = await cli(['delete', id], { key });
      expect(r.code, r.err).toBe(0);
      expect(r.out).toBe(`deleted ${id}: expanding it now answers 410 gone\n`);
    }
    expect((await client.get(`/v1/handles/${sys.id}/expand`)).status).toBe(410);
    const again = await cli(['delete', sys.id], { key });
    expect(again.code).toBe(1);
    expect(again.err).toBe(`gone: handle ${sys.id} was deleted (path:ref)\n`);
  }, 60_000);
});

describe('request <id> on a long session', () => {
  it("request: a long session's batches before its newest 50 are one summed row, as on the dashboard", async () => {
    const { key, client } = h.t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} long session`);
    const bnd = await mintBundle(client, [sys.id]);
    const ses = await startSession(client, { base: bnd.ref, messages: [userMessage('turn 0')] });
    for (let k = 1; k < 62; k++) {
      const res = await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [k % 2 ? assistantMessage(`turn ${k}`) : userMessage(`turn ${k}`)] });
      expect(res.status, res.text).toBe(201);
    }
    const r = await renderAnthropic(client, { prefix: [ses.id], messages: [userMessage('go on')] });
    await report(client, h.t, r, anthropicUsage(promptTokens(r), 0, r.breakpoints.at(-1)?.token_end ?? 0));
    const shown = await cli(['request', r.request_id], { key });
    expect(shown.code, shown.err).toBe(0);

    const api = (await client.get(`/v1/requests/${r.request_id}`)).json;
    const sources: string[] = api.segments.map((s: { source: string }) => s.source);
    // The system prompt, 62 batches, the request's own message: batches 1–12 summed, 13–62 each on a line.
    expect(sources).toHaveLength(64);
    const runs = shownRuns(sources);
    expect(runs.slice(0, 3)).toEqual([[0, 0], [1, 12], [13, 13]]);
    const rows = shown.out.split('\n').filter((l) => /^#\d/.test(l));
    expect(rows).toHaveLength(runs.length);
    const folded = api.outcome.segments.slice(1, 13) as Array<{ start: number; end: number; classes: Record<string, number> }>;
    const summed: Record<string, number> = {};
    for (const s of folded) for (const [c, n] of Object.entries(s.classes)) summed[c] = (summed[c] ?? 0) + n;
    const classes = Object.entries(summed).filter(([, n]) => n > 0).map(([c, n]) => `${c} ${tokens(n)}`).join(', ');
    expect(classes).not.toBe('');
    expect(rows[1]).toMatch(new RegExp(`^#2–#13 +${ses.id}@1 … ${ses.id}@12 \\(12 earlier batches of the session, summed\\) +messages +${tokens(folded.at(-1)!.end - folded[0]!.start)} +${classes}$`));
    expect(rows[2]).toMatch(new RegExp(`^#14 +${ses.id}@13 +messages `));
    expect(rows.at(-2)).toMatch(new RegExp(`^#63 +${ses.id}@62 `));
    expect(shown.out).toContain("\n12 of the 64 segments are a session's batches before its newest 50, summed in one row (--json lists each)\n");
  }, 60_000);

  it('requests --from/--to lists the requests started on those UTC days, as report reads a range; a bad time is exit 2', async () => {
    const { client, key } = h.t.tenant();
    const sys = await mintSystem(client, 'Range test system prompt.');
    const ask = () => renderAnthropic(client, { prefix: [sys.id], messages: [userMessage('hi')] }).then((r) => r.request_id);
    h.t.clock.set(Date.UTC(2026, 10, 30, 23, 0));
    const nov30 = await ask();
    h.t.clock.set(Date.UTC(2026, 11, 1, 9, 0));
    const dec1 = [await ask()];
    h.t.clock.advance(60_000);
    dec1.push(await ask());
    h.t.clock.set(Date.UTC(2026, 11, 3, 9, 0));
    const dec3 = await ask();
    // Imported on the 3rd, a call of the 1st: listed on the day it started, as reports count it.
    h.t.clock.advance(60_000);
    const imported = await ask();
    const reported = await client.post('/v1/usage', { request_id: imported, usage: { input_tokens: 12, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 }, started_at: '2026-12-01T10:00:00Z' });
    expect(reported.status, reported.text).toBe(201);
    await h.t.services.writes.idle();
    const listed = (out: string) => [...out.matchAll(/ (req_\w{21}) /g)].map((m) => m[1]);
    const [day, epoch, instant, page] = await Promise.all([
      cli(['requests', '--from', '2026-12-01', '--to', '2026-12-01'], { key }),
      cli(['requests', '--to', String(Date.UTC(2026, 11, 1, 12, 0))], { key }),
      cli(['requests', '--from', '2026-12-02T00:00:00+01:00'], { key }),
      cli(['requests', '--from', '2026-12-01', '--to', '2026-12-01', '--limit', '1'], { key }),
    ]);
    for (const r of [day, epoch, instant, page]) expect(r.code, r.err).toBe(0);
    expect(listed(day.out)).toEqual([imported, ...[...dec1].reverse()]);
    expect(day.out).toMatch(new RegExp(`^2026-12-03T09:01:00.000Z +2026-12-01T10:00:00.000Z +${imported} `, 'm'));
    // Whole days: an instant names its UTC day (01:00 on the 2nd in +01:00 is the 1st, 23:00 UTC).
    expect(listed(epoch.out)).toEqual([imported, ...[...dec1].reverse(), nov30]);
    expect(listed(instant.out)).toEqual([dec3, imported, ...[...dec1].reverse()]);
    // The next page's hint keeps the range (the cursor alone would page on through every day) and the page size.
    const more = /^more: (.*)$/m.exec(page.out)![1]!;
    expect(more).toMatch(/^--cursor \S+ --from 2026-12-01 --to 2026-12-01 --limit 1$/);
    expect(listed((await cli(['requests', ...more.split(' ')], { key })).out)).toEqual([...dec1].reverse().slice(0, 1));
    expect((await cli(['requests', '--from', '2026-12-02', '--to', '2026-12-02'], { key })).out).toBe('no requests recorded that started in this range\n');

    const bad = await Promise.all([
      cli(['requests', '--from', '2026-02-30'], { key }),
      cli(['requests', '--to', '1764547200'], { key }),
      cli(['requests', '--from', 'Dec 3 2026'], { key }),
      cli(['requests', '--from', '2026-12-03', '--to', '2026-12-02T23:00:00Z'], { key }),
    ]);
    expect(bad.map((r) => r.code)).toEqual([2, 2, 2, 2]);
    expect(bad[0]!.err).toContain("--from: no such day: '2026-02-30'");
    expect(bad[1]!.err).toContain("--to: epoch milliseconds are expected; '1764547200' looks like seconds");
    expect(bad[2]!.err).toContain("--from: not a time: 'Dec 3 2026'");
    expect(bad[3]!.err).toContain('--from 2026-12-03 is on a later day than --to 2026-12-02T23:00:00Z');
  });
});
