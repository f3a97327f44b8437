import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { percent, tokens, usd } from '../../src/cli/table';
import { ADMIN_OPTIONS } from '../../src/cli/admin';
import { API_OPTIONS } from '../../src/cli/command';
import { backup as backupCommand } from '../../src/cli/commands/backup';
import { bundle as bundleCommand } from '../../src/cli/commands/bundle';
import { expand as expandCommand } from '../../src/cli/commands/expand';
import { handles as handlesCommand, remove as deleteCommand, show as showCommand } from '../../src/cli/commands/handles';
import { importCalls as importCommand } from '../../src/cli/commands/import';
import { keys as keysCommand } from '../../src/cli/commands/keys';
import { mint as mintCommand } from '../../src/cli/commands/mint';
import { driftDetail, report as reportCommand } from '../../src/cli/commands/report';
import { request as requestCommand, requests as requestsCommand } from '../../src/cli/commands/request';
import { serve as serveCommand } from '../../src/cli/commands/serve';
import { session as sessionCommand } from '../../src/cli/commands/session';
import { tenants as tenantsCommand } from '../../src/cli/commands/tenants';
import { suggest as suggestCommand } from '../../src/cli/commands/suggest';
import { verify as verifyCommand } from '../../src/cli/commands/verify';
import type { TestApp } from '../helpers/app';
import { startCliHarness, type CliHarness, type CliOptions, type CliRun } from '../helpers/cli';
import { BIN, cleanEnv } from '../helpers/processes';
import { mintArtifact, mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

// The CLI runs as a child process (as users run it) against the service served in this
// process on a loopback port (test/helpers/cli.ts).

let h: CliHarness;
let t: TestApp;
let url: string;
let dir: string;

beforeAll(async () => {
  h = await startCliHarness('ph-cli-');
  ({ t, url, dir } = h);
});

afterAll(() => h.close());

const MIN = 60_000;

type Run = CliRun;
const cli = (args: string[], opts?: CliOptions) => h.cli(args, opts);
const file = (name: string, content: string | Buffer) => h.file(name, content);

async function apiBytes(key: string, path: string): Promise<Buffer> {
  const res = await t.app.request(path, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('prefix-handles CLI', () => {
  it('answers --help at the top and on every command, and usage errors with exit 2', async () => {
    const commands = ['serve', 'mint', 'bundle', 'session', 'expand', 'handles', 'show', 'delete', 'report', 'request', 'requests', 'import', 'suggest', 'verify', 'backup', 'tenants', 'keys'];
    const [top, ...each] = await Promise.all([cli(['--help']), ...commands.map((c) => cli([c, '--help']))]);
    expect(top.code).toBe(0);
    for (const c of commands) expect(top.out).toContain(`  ${c} `);
    each.forEach((r, i) => {
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain(`Usage: prefix-handles ${commands[i]}`);
    });

    // The usage line (also what a missing argument prints) names every option of the command's own; the
    // connection options shared by every API or admin command are under Options only.
    const shared = new Set([...Object.keys(API_OPTIONS), ...Object.keys(ADMIN_OPTIONS)].filter((o) => o !== 'json'));
    for (const c of [serveCommand, mintCommand, bundleCommand, sessionCommand, handlesCommand, showCommand, deleteCommand, expandCommand, reportCommand, requestCommand, requestsCommand, importCommand, suggestCommand, verifyCommand, backupCommand, tenantsCommand, keysCommand]) {
      const usage = c.help.slice(0, c.help.indexOf('\n\n'));
      for (const o of Object.keys(c.options).filter((o) => !shared.has(o))) expect(usage, `${c.name} --${o}`).toContain(`--${o}`);
    }

    const [unknownCommand, unknownFlag] = await Promise.all([cli(['frobnicate']), cli(['expand', 'art_x', '--bogus'])]);
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.err).toContain("unknown command 'frobnicate'");
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.err).toContain("Unknown option '--bogus'");
    expect(unknownFlag.err).toContain("prefix-handles expand --help");
    // A misspelt command or option is named with the nearest one, as the API names a misspelt query parameter's.
    const [typoCommand, typoFlag, typoHelp] = await Promise.all([cli(['reprot']), cli(['report', '--form', '2026-12-01']), cli(['help', 'reqests'])]);
    expect([typoCommand.code, typoFlag.code, typoHelp.code]).toEqual([2, 2, 2]);
    expect(typoCommand.err).toContain("unknown command 'reprot'; did you mean report?\n");
    expect(typoFlag.err).toContain("Unknown option '--form'; did you mean --from?\n");
    expect(typoHelp.err).toContain("unknown command 'reqests'; did you mean requests?\n");
    expect(unknownFlag.err).not.toContain('did you mean');
    // A missing argument names what is missing, from the command's usage line.
    const [noFile, noRef] = await Promise.all([cli(['mint', 'system']), cli(['expand'])]);
    expect([noFile.code, noRef.code]).toEqual([2, 2]);
    expect(noFile.err).toContain('prefix-handles: missing argument: prefix-handles mint <kind> <file|-> [--name NAME] [--version-of ID]\n');
    expect(noRef.err).toContain('prefix-handles: missing argument: prefix-handles expand <ref> [--format F]\n');
    // Before any command, and a value the command can check itself: usage errors too, said before any call.
    const [bareFlag, badFormat] = await Promise.all([cli(['--bogus']), cli(['expand', 'art_x', '--format', 'bogus', '--key', 'k'])]);
    expect(bareFlag.code).toBe(2);
    expect(bareFlag.err).toContain("unknown option '--bogus'");
    expect(badFormat.code).toBe(2);
    expect(badFormat.err).toContain("--format: one of neutral, anthropic, openai-chat, openai-responses, gemini (got 'bogus')");
    // A command's option with its value before the command word: the value is not taken for the command.
    const early = await cli(['--format', 'bogus', 'expand', 'art_x', '--key', 'k']);
    expect(early.code).toBe(2);
    expect(early.err).toContain("--format: one of neutral, anthropic, openai-chat, openai-responses, gemini (got 'bogus')");
    // A service address that is no URL is how the command was called, not an unreachable service.
    const [badUrl, badEnv] = await Promise.all([cli(['report', '--url', 'notaurl', '--key', 'k']), cli(['report', '--key', 'k'], { env: { PH_URL: 'ftp://files' } })]);
    expect([badUrl.code, badEnv.code]).toEqual([2, 2]);
    expect(badUrl.err).toContain('--url must be an http(s) URL');
    expect(badEnv.err).toContain('PH_URL must be an http(s) URL');
    // The API's /v1 or an SDK's proxy base URL given for the service's address: said so, with the address to use.
    const [v1, proxyBase] = await Promise.all([cli(['report', '--url', `${url}/v1/`, '--key', 'k']), cli(['report', '--key', 'k'], { env: { PH_URL: `${url}/proxy/openai/v1` } })]);
    expect([v1.code, proxyBase.code]).toEqual([2, 2]);
    expect(v1.err).toContain(`--url is the service's address, without /v1 (got "${url}/v1": use "${url}")`);
    expect(proxyBase.err).toContain(`PH_URL is the service's address, without the proxy path (got "${url}/proxy/openai/v1": use "${url}")`);
    // Epoch numbers as the API reads them: seconds are said to be seconds, a number past any date is refused.
    const [seconds, huge] = await Promise.all([cli(['report', '--to', '99999999999', '--key', 'k']), cli(['report', '--from', '99999999999999999', '--key', 'k'])]);
    expect([seconds.code, huge.code]).toEqual([2, 2]);
    expect(seconds.err).toContain("--to: epoch milliseconds are expected; '99999999999' looks like seconds");
    expect(huge.err).toContain('past the largest time a date can hold');
    // A day that does not exist, a time without a zone, free text: the API refuses them all, so they are usage errors, said before any call.
    const [noDay, noZone, prose] = await Promise.all([
      cli(['report', '--from', '2026-02-30', '--key', 'k']),
      cli(['report', '--to', '2026-12-03T10:00:00', '--key', 'k']),
      cli(['report', '--from', 'Dec 3 2026', '--key', 'k']),
    ]);
    expect([noDay.code, noZone.code, prose.code]).toEqual([2, 2, 2]);
    expect(noDay.err).toContain("--from: no such day: '2026-02-30'");
    expect(noZone.err).toContain("--to: not a time: '2026-12-03T10:00:00' (RFC 3339 with a zone");
    expect(prose.err).toContain("--from: not a time: 'Dec 3 2026'");
    // A range that ends before it starts (whole days) is one too.
    const backwards = await cli(['report', '--from', '2026-12-03', '--to', '2026-12-02T23:00:00Z', '--key', 'k']);
    expect(backwards.code).toBe(2);
    expect(backwards.err).toContain('--from 2026-12-03 is on a later day than --to 2026-12-02T23:00:00Z');
    // Some 30 child processes: on 2 busy cores they take over the default 30 s.
  }, 90_000);

  it('answers `help` and `help <command>` as --help, as git and npm do', async () => {
    const [top, help, requestHelp, helpOf, helpOfNothing] = await Promise.all([cli(['--help']), cli(['help']), cli(['request', '--help']), cli(['help', 'request']), cli(['help', 'frobnicate'])]);
    expect([help.code, help.out]).toEqual([0, top.out]);
    expect(top.out).toContain("'prefix-handles help <command>'");
    expect([helpOf.code, helpOf.out]).toEqual([0, requestHelp.out]);
    expect(helpOfNothing.code).toBe(2);
    expect(helpOfNothing.err).toContain("unknown command 'frobnicate'");
  });

  it('mints from a file and stdin, and expands byte for byte what the API expands', async () => {
    const { key } = t.tenant();
    // A BOM, CRLF, a tab, trailing spaces, an emoji, no final newline: all must survive.
    const text = '\uFEFFYou are terse.\r\n\tRule one:  be exact.  \n😀 end';
    const tools = '[{"name":"lookup","input_schema":{"type":"object","properties":{"q":{"type":"string"}}},"description":"Find things"}]';
    const [sys, tool] = await Promise.all([
      cli(['mint', 'system', file('sys.txt', text), '--name', 'terse'], { key }),
      cli(['mint', 'tools', '-'], { key, input: tools }),
    ]);
    expect(sys.code, sys.err).toBe(0);
    expect(tool.code, tool.err).toBe(0);
    const [sysRef, sysDigest] = sys.out.trim().split('\t') as [string, string];
    const toolRef = tool.out.trim().split('\t')[0]!;
    expect(sysRef).toMatch(/^art_[0-9A-Za-z]{21}@1$/);
    expect(sysDigest).toBe(createHash('sha256').update(text).digest('hex'));

    const [sysOut, toolOut, next, missing] = await Promise.all([
      cli(['expand', sysRef, '--format', 'anthropic'], { key }),
      cli(['expand', toolRef, '--key', key]),
      cli(['mint', 'system', file('sys2.txt', `${text}!`), '--version-of', sysRef], { key }),
      cli(['expand', 'art_AAAAAAAAAAAAAAAAAAAAA'], { key }),
    ]);
    expect(sysOut.code, sysOut.err).toBe(0);
    expect(sysOut.stdout.equals(await apiBytes(key, `/v1/handles/${sysRef}/expand?format=anthropic`))).toBe(true);
    expect(JSON.parse(sysOut.out).system[0].text).toBe(text);
    expect(toolOut.stdout.equals(await apiBytes(key, `/v1/handles/${toolRef}/expand`))).toBe(true);
    expect(toolOut.out.endsWith('\n')).toBe(false);

    expect(next.code, next.err).toBe(0);
    expect(next.out).toMatch(new RegExp(`^${sysRef.replace('@1', '@2')}\\t[0-9a-f]{64}\\n$`));

    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^not_found: .*art_AAAAAAAAAAAAAAAAAAAAA/);

    // The kind named must be the artifact's own: a document is not the next version of a system prompt.
    const wrongKind = await cli(['mint', 'document', file('doc.txt', 'a document'), '--version-of', sysRef], { key });
    expect(wrongKind.code).toBe(1);
    expect(wrongKind.err).toContain(`is a system artifact, not document`);

    // Content with a timestamp is minted, with a warning on stderr that names it and says what it costs.
    const dated = await cli(['mint', 'system', file('dated.txt', 'You are helpful. Today is 2026-01-01T12:00:00Z.')], { key });
    expect(dated.code, dated.err).toBe(0);
    expect(dated.out).toMatch(/^art_\w+@1\t[0-9a-f]{64}\n$/);
    expect(dated.err).toMatch(/^warning: .*1 volatile value: iso_timestamp "2026-01-01T12:00:00Z" at byte 26: values like these usually differ each time content is produced/);
  });

  it('report: the leaked money of misses by calls without cache fields only is unknown, not $0.000000', async () => {
    const { key, client } = t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} unknown capture`);
    // A gateway's log kept input and output counts only: the prefix sent again after 10 minutes is expired tokens
    // whose money is not known (the input is counted apart, at full price).
    for (const q of ['one', 'two']) {
      const r = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: q }] });
      await report(client, t, r, { input_tokens: promptTokens(r), output_tokens: 9 });
      t.clock.advance(10 * MIN);
    }
    expect((await client.get(`/v1/reports/handles/${sys.id}`)).json.tokens.expired).toBeGreaterThan(0);
    const run = await cli(['report', sys.ref], { key });
    expect(run.code, run.err).toBe(0);
    expect(run.out).toMatch(/^ +expired +[\d,]+ +[\d.]+% +1 +unknown$/m);
    // A class with no tokens leaked nothing: $0 still.
    expect(run.out).toMatch(/^ +drift +0 +0\.0% +0 +\$0\.000000$/m);
  });

  it('reports a handle and the tenant as tables with the API figures, handles ranked by leaked money', async () => {
    const { key, client } = t.tenant();
    // Handle A: written, then read. Handle B: written, then the provider reports no read: leaked.
    const a = await mintSystem(client, `${LONG_SYSTEM} A`);
    const b = await mintSystem(client, `${LONG_SYSTEM} B`);
    for (const [h, readSecond] of [[a, true], [b, false]] as const) {
      const r1 = await renderAnthropic(client, { prefix: [h.id], messages: [{ role: 'user', content: 'one' }] });
      const cached = r1.breakpoints[0]!.token_end;
      await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, cached));
      t.clock.advance(MIN);
      const r2 = await renderAnthropic(client, { prefix: [h.id], messages: [{ role: 'user', content: 'two' }] });
      await report(client, t, r2, anthropicUsage(promptTokens(r2), readSecond ? cached : 0, readSecond ? 0 : cached));
      t.clock.advance(MIN);
    }
    const [handleText, tenantText] = await Promise.all([cli(['report', a.ref], { key }), cli(['report', '--from', '2025-12-31'], { key })]);
    expect(handleText.code, handleText.err).toBe(0);
    expect(tenantText.code, tenantText.err).toBe(0);

    const ha = (await client.get(`/v1/reports/handles/${a.id}`)).json;
    expect(ha.tokens.captured).toBeGreaterThan(0);
    expect(handleText.out).toContain(`handle ${a.id}`);
    for (const c of ['referenced', 'cold', 'opportunity', 'captured', 'unconfirmed', 'unknown', 'bonus']) {
      expect(handleText.out).toMatch(new RegExp(`^ *${c} +${tokens(ha.tokens[c])} `, 'm'));
    }
    expect(handleText.out).toContain(`capture rate ${percent(ha.capture_rate)}`);
    expect(handleText.err).not.toContain('note:');
    // A model name nobody used (a typo, most likely) gives zeros and a note saying so.
    const typo = await cli(['report', a.ref, '--model', 'claude-sonet-4-5'], { key });
    expect(typo.code).toBe(0);
    expect(typo.err).toContain("note: no request of this handle used the model 'claude-sonet-4-5' in this range (model names match exactly, as requested; calls with their prompt inline are on no handle's report, the tenant report counts them apart: 'prefix-handles requests' lists every call)");
    const tenantTypo = await cli(['report', '--model', 'claude-sonet-4-5'], { key });
    expect(tenantTypo.err).toContain("note: no request that referenced a handle used the model 'claude-sonet-4-5' in this range");
    // The tenant report counts calls with their prompt inline (no_handle): the note does not say they are on none.
    expect(tenantTypo.err).toContain("calls with their prompt inline are counted apart, under 'calls that referenced no handle'");
    expect(tenantTypo.err).not.toContain('on no report');
    expect(handleText.out).toMatch(new RegExp(`realised savings +\\${usd(ha.money.realised_savings)}`));
    expect(handleText.out).toMatch(new RegExp(`unread write premiums +\\${usd(ha.money.write_premiums_unread)}`));

    const tenant = (await client.get('/v1/reports')).json;
    expect(tenant.handles.map((h: { id: string }) => h.id)).toEqual([b.id, a.id]);
    expect(tenant.handles[0].money.leaked_savings).toBeGreaterThan(0);
    expect(tenantText.out).toMatch(new RegExp(`^ *unconfirmed +${tokens(tenant.tokens.unconfirmed)} `, 'm'));
    expect(tenantText.out).toMatch(new RegExp(`leaked savings +\\${usd(tenant.money.leaked_savings)}`));
    const rowB = tenantText.out.split('\n').find((l) => l.startsWith(b.id))!;
    expect(tenantText.out.indexOf(b.id)).toBeLessThan(tenantText.out.indexOf(a.id));
    expect(rowB).toContain(usd(tenant.handles[0].money.leaked_savings));
    expect(rowB).toContain(percent(tenant.handles[0].capture_rate));
    // --limit: the handles that leaked most, and how many there are.
    const top = await cli(['report', '--from', '2025-12-31', '--limit', '1'], { key });
    expect(top.code, top.err).toBe(0);
    expect(top.out).toContain('handles, by leaked money (the 1 that leaked most of 2)');
    expect(top.out).toContain(b.id);
    expect(top.out).not.toContain(a.id);
    for (const [args, message] of [
      [['report', '--limit', '0'], "--limit: a whole number of handles from 1 is expected, not '0'"],
      [['report', a.ref, '--limit', '5'], '--limit is for the tenant report'],
    ] as const) {
      const bad = await cli([...args], { key });
      expect(bad.code).toBe(2);
      expect(bad.err).toContain(message);
    }
    expect(tenantText.out).toMatch(/unread premiums +within TTL/);

    // A name with terminal control characters is shown escaped: it cannot clear the screen or recolour lines.
    const evil = (await client.post('/v1/artifacts', { kind: 'system', content: 'x', name: 'evil\u001b[2J\r' })).json;
    const shown = await cli(['report', evil.id], { key });
    expect(shown.out).toContain('"evil\\u001b[2J\\u000d"');
    expect(shown.out).not.toMatch(/[\u001b\r]/);
    // So are direction controls: a right-to-left override would reorder the rest of the line.
    const rtl = (await client.post('/v1/artifacts', { kind: 'system', content: 'y', name: 'a\u202eb' })).json;
    const flipped = await cli(['report', rtl.id], { key });
    expect(flipped.out).toContain('"a\\u202eb"');
    expect(flipped.out).not.toContain('\u202e');
  });

  it("prints a handle's drift findings, and one request's segments by class with what explains its misses", async () => {
    const { key, client } = t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} drift`);
    const at = (stamp: string) => ({ system: [{ type: 'text', text: `Current time: ${stamp}` }, { type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: 'hello' }] });
    const r1 = await renderAnthropic(client, at('2026-11-21T10:00:00Z'));
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, r1.breakpoints[0]!.token_end));
    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, at('2026-11-21T10:01:00Z'));
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), 0, r2.breakpoints[0]!.token_end))).outcome;
    // Past the 5-minute TTL, the same prompt again: expired.
    t.clock.advance(10 * MIN);
    const r3 = await renderAnthropic(client, at('2026-11-21T10:01:00Z'));
    const o3 = (await report(client, t, r3, anthropicUsage(promptTokens(r3), 0, r3.breakpoints[0]!.token_end))).outcome;
    expect(o3.expired).toBeDefined();
    // The provider's own explanation, when its answer carries one, beside ours.
    t.clock.advance(MIN);
    const r4 = await renderAnthropic(client, at('2026-11-21T10:01:00Z'));
    const diagnostics = { cache_miss_reason: { type: 'prompt_changed', cache_missed_input_tokens: 10 } };
    const answered = await client.post('/v1/usage', { request_id: r4.request_id, response: { type: 'message', usage: anthropicUsage(promptTokens(r4), 0, 0), diagnostics } });
    expect(answered.status, answered.text).toBe(201);
    t.clock.advance(MIN);
    const pending = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: 'later' }] });

    const [handleText, driftReq, expiredReq, pendingReq, asJson, explained] = await Promise.all([
      cli(['report', sys.id], { key }),
      cli(['request', r2.request_id], { key }),
      cli(['request', r3.request_id], { key }),
      cli(['request', pending.request_id], { key }),
      cli(['request', r2.request_id, '--json'], { key }),
      cli(['request', r4.request_id], { key }),
    ]);
    for (const r of [handleText, driftReq, expiredReq, pendingReq, asJson, explained]) expect(r.code, r.err).toBe(0);
    expect(explained.out).toContain(`the provider's own explanation: prompt_changed (${JSON.stringify(diagnostics)})`);
    expect(driftReq.out).not.toContain("provider's own explanation");
    // The report says which request missed which one's prefix, where the bytes first differ, and both sides.
    const offset = tokens(o2.drift.byte_offset);
    expect(handleText.out).toContain(`recent drift, newest first (the 1 latest in the range; 'prefix-handles request <id>' opens one)\n`);
    expect(handleText.out).toContain(`${sys.id}@1: ${r2.request_id} missed the prefix ${r1.request_id} had written\n  segment #1 changed, first at byte ${offset}: inline → inline\n`);
    expect(handleText.out).toContain(`    before ${JSON.stringify(o2.drift.before.excerpt)}\n    now    ${JSON.stringify(o2.drift.now.excerpt)}`);
    expect(handleText.out).not.toContain('see --json');

    // A request: its segments in order with their classes (as the API's outcome has them), and the drift.
    const api2 = (await client.get(`/v1/requests/${r2.request_id}`)).json;
    expect(JSON.parse(asJson.out)).toEqual(api2);
    expect(driftReq.out).toMatch(new RegExp(`^request ${r2.request_id}  reconciled  anthropic  claude-sonnet-4-5\n`));
    const rows = driftReq.out.split('\n').filter((l) => /^#\d/.test(l));
    expect(rows).toHaveLength(api2.segments.length);
    api2.outcome.segments.forEach((s: { source: string; classes: Record<string, number> }, i: number) => {
      const shown = Object.entries(s.classes).filter(([, n]) => n > 0).map(([c, n]) => `${c} ${tokens(n)}`).join(', ');
      expect(rows[i]).toMatch(new RegExp(`^#${i + 1} +${s.source} .*  ${shown}$`));
    });
    expect(driftReq.out).toContain(`drift: the prefix ${r1.request_id} had written was not read from ${sys.id}@1 on\n  segment #1 changed, first at byte ${offset}`);
    // And what to change: the timestamp before the handle goes after it.
    expect(driftReq.out).toContain(`\n  to be read: keep what changes from call to call (a timestamp, a request id, the date) out of the bytes before the handles: put it after them, in the newest message`);
    // Expired: how long unused, against the lifetime, and how Anthropic keeps a prefix longer.
    expect(expiredReq.out).toContain(`expired: the prefix was last used 10 min 0 s before this call (${new Date(o3.expired!.last_used_at).toISOString()}), longer than its cache lifetime of 5m`);
    expect(expiredReq.out).toContain(`\nto keep it: a call within the lifetime keeps it alive; Anthropic keeps a prefix an hour when its mark asks for "ttl": "1h" (PH_CACHE_TTL=1h for the service's marks)\n`);
    // Not reported yet: said so, with its segments and no classes.
    expect(pendingReq.out).toContain('not reconciled yet: no usage has been reported for it');
    expect(pendingReq.out).toContain('classes (once reconciled)');

    // The handle's requests, newest first, a page at a time: the way from a report's drift to the request to open.
    const [page1, all] = await Promise.all([cli(['requests', '--handle', sys.ref, '--limit', '2'], { key }), cli(['requests', '--handle', sys.id], { key })]);
    expect(page1.code, page1.err).toBe(0);
    const listed = (r: Run) => [...r.out.matchAll(/ (req_\w{21})( drift)? /g)].map((m) => `${m[1]}${m[2] ?? ''}`);
    expect(listed(all)).toEqual([pending.request_id, r4.request_id, r3.request_id, `${r2.request_id} drift`, r1.request_id]);
    expect(all.out).toMatch(new RegExp(`${pending.request_id} +rendered +claude-sonnet-4-5 +— *\n`));
    expect(all.out).not.toContain('more:');
    expect(listed(page1)).toEqual(listed(all).slice(0, 2));
    // The next page is asked as this one was: the handle and the page size go with the cursor.
    const more = /^more: (--cursor (\S+) .*)$/m.exec(page1.out)!;
    const cursor = more[2]!;
    expect(more[1]).toBe(`--cursor ${cursor} --handle ${sys.ref} --limit 2`);
    const page2 = await cli(['requests', ...more[1]!.split(' ')], { key });
    expect(listed(page2)).toEqual(listed(all).slice(2, 4));
    expect(page2.out).toMatch(/^more: --cursor \S+ --handle \S+ --limit 2$/m);
    // --class: the requests behind a leak figure, as GET /v1/requests?class= lists them; its cursor keeps the filter.
    const [drifted, expired, driftPage, byModel, noLookback, badClass] = await Promise.all([
      cli(['requests', '--handle', sys.id, '--class', 'drift'], { key }),
      cli(['requests', '--class', 'expired'], { key }),
      cli(['requests', '--handle', sys.id, '--class', 'drift', '--limit', '1', '--cursor', cursor], { key }),
      cli(['requests', '--handle', sys.id, '--model', 'claude-sonnet-4-5', '--limit', '2'], { key }),
      cli(['requests', '--handle', sys.id, '--class', 'lookback'], { key }),
      cli(['requests', '--class', 'leak'], { key }),
    ]);
    expect(listed(drifted)).toEqual([`${r2.request_id} drift`]);
    expect(drifted.out).toMatch(new RegExp(`${r2.request_id} drift +reconciled +claude-sonnet-4-5 +.* drift ${tokens(o2.segments.find((x) => x.source === `${sys.id}@1`)!.classes.drift!)}`));
    expect(listed(expired)).toEqual([r3.request_id]);
    expect(listed(expired)).toEqual((await client.get('/v1/requests?class=expired')).json.requests.map((r: { id: string }) => r.id));
    // Past the first two requests (pending, r4): r2 is the only drift, the page the last.
    expect([listed(driftPage), driftPage.out.includes('more:')]).toEqual([[`${r2.request_id} drift`], false]);
    // The next page's line keeps the filter.
    expect(listed(byModel)).toEqual(listed(all).slice(0, 2));
    expect(byModel.out).toMatch(new RegExp(`^more: --cursor \\S+ --handle ${sys.id} --model claude-sonnet-4-5 --limit 2$`, 'm'));
    expect(noLookback.out).toBe('no requests recorded that referenced this handle with lookback on it\n');
    expect(badClass.code).toBe(2);
    expect(badClass.err).toContain("--class: one of captured, bonus, unconfirmed, unknown, cold, drift, expired, concurrent, below_minimum, no_breakpoint, lookback is expected, not 'leak'");
    const badLimit = await cli(['requests', '--limit', '501'], { key });
    expect(badLimit.code).toBe(2);
    expect(badLimit.err).toContain("--limit: a whole number of requests from 1 to 500 is expected, not '501'");

    // A handle given to `request`, a request to `report`: usage errors naming the other command; an unknown id: not_found.
    const [handleAsRequest, requestAsHandle, missing] = await Promise.all([
      cli(['request', sys.id], { key }),
      cli(['report', r2.request_id], { key }),
      cli(['request', 'req_AAAAAAAAAAAAAAAAAAAAA'], { key }),
    ]);
    expect([handleAsRequest.code, requestAsHandle.code, missing.code]).toEqual([2, 2, 1]);
    expect(handleAsRequest.err).toContain(`'${sys.id}' is not a request id (req_…); a handle's figures are in 'prefix-handles report ${sys.id}'`);
    expect(requestAsHandle.err).toContain(`${r2.request_id} is a request, not a handle: 'prefix-handles request ${r2.request_id}' shows it`);
    expect(missing.err).toMatch(/^not_found: /);
    // A dozen child processes: on 2 busy cores they can take over the default 30 s.
  }, 90_000);

  it("request: says why each class missed, in the dashboard legend's words, with the request's own figures", async () => {
    const { key, client } = t.tenant();
    const short = await mintSystem(client);
    const long = await mintSystem(client, `${LONG_SYSTEM} whys`);
    const warm = await mintSystem(client, `${LONG_SYSTEM} warmed elsewhere`);
    const ask = (ref: string) => ({ system: [{ type: 'handle', ref }], messages: [{ role: 'user', content: 'hello' }] });
    // A short system prompt sent twice: under Sonnet's 1,024-token minimum, never cached.
    await report(client, t, await renderAnthropic(client, ask(short.id)), anthropicUsage(40, 0, 0));
    t.clock.advance(MIN);
    const under = await renderAnthropic(client, ask(short.id));
    await report(client, t, under, anthropicUsage(promptTokens(under), 0, 0));
    // A long one written, then not read a minute later (evicted): unconfirmed.
    const first = await renderAnthropic(client, ask(long.id));
    await report(client, t, first, anthropicUsage(promptTokens(first), 0, first.breakpoints[0]!.token_end));
    t.clock.advance(MIN);
    const missed = await renderAnthropic(client, ask(long.id));
    const o = (await report(client, t, missed, anthropicUsage(promptTokens(missed), 0, missed.breakpoints[0]!.token_end))).outcome;
    // Read at its first use here: a cache warmed by traffic the service did not see.
    const warmed = await renderAnthropic(client, ask(warm.id));
    await report(client, t, warmed, anthropicUsage(promptTokens(warmed), warmed.breakpoints[0]!.token_end, 0));

    const [underText, missedText, warmedText] = await Promise.all([cli(['request', under.request_id], { key }), cli(['request', missed.request_id], { key }), cli(['request', warmed.request_id], { key })]);
    for (const r of [underText, missedText, warmedText]) expect(r.code, r.err).toBe(0);
    const view = (await client.get(`/v1/requests/${under.request_id}`)).json;
    const held = view.outcome.segments.flatMap((s: { classes: { below_minimum: number } }, i: number) => (s.classes.below_minimum > 0 ? [i] : []));
    const n = held.reduce((a: number, i: number) => a + view.outcome.segments[i].classes.below_minimum, 0);
    const end = view.outcome.segments[held.at(-1)].end;
    expect(held.length).toBeGreaterThan(0);
    expect(end).toBeLessThan(1024);
    expect(underText.out).toContain(
      `below_minimum ${tokens(n)} tokens in #1${held.length > 1 ? `–#${held.length}` : ''}: the prefix is shorter than the model's minimum cacheable length: through #${held.at(-1) + 1} it is ${tokens(end)} tokens, under claude-sonnet-4-5's minimum of 1,024; no breakpoint or longer lifetime caches it: more of what every call sends the same (tools, documents, in one bundle before what changes) to clear the minimum, or a model with a lower one, would\n`,
    );
    expect(o.predicted.read).toBeGreaterThan(1024);
    expect(missedText.out).toMatch(new RegExp(`^unconfirmed [\\d,]+ tokens in #1[^:]*: predicted, but the provider did not report it as read: predicted read ${tokens(o.predicted.read)}, the provider read 0 \\(eviction, another account, or a concurrent first write\\)$`, 'm'));
    const read = warmed.breakpoints[0]!.token_end;
    expect(warmedText.out).toMatch(new RegExp(`^bonus [\\d,]+ tokens in #1: read beyond our prediction \\(a cache warmed by traffic we did not see\\): the provider read ${tokens(read)}, ${tokens(read)} more than the 0 predicted$`, 'm'));
    // The caller's question is new as every call's is: no volatile value to hunt for in it.
    // Read up to the breakpoint and nothing written: the question after it was sent, not written.
    expect(warmedText.out).toMatch(/^cold [\d,]+ tokens in #2: first sent in this cache scope: nothing earlier to read; none of them was written to the cache; #2 is the caller's messages of this call, new as a call's question or tool result is$/m);
  }, 60_000);

  it('says a drift by a changed setting, by another API format, and one whose bytes were not kept', () => {
    const side = (source: string, digest: string, excerpt?: string) => ({ source, digest, ...(excerpt === undefined ? {} : { excerpt }) });
    const base = { handle: 'ses_x@2', segment: 2, now: side('ses_x@2', 'b'.repeat(64)), before: side('ses_x@2', 'a'.repeat(64)) };
    expect(driftDetail({ ...base, settings: [{ name: 'tool_choice', before: null, now: { type: 'any' } }] })).toEqual([
      'tool_choice changed: not sent → {"type":"any"}: Anthropic caches the messages under tool_choice and thinking, so from segment #3 on they were sent again uncached',
    ]);
    expect(driftDetail({ ...base, now: base.before, thinking: 'earlier_turn' })).toEqual([
      "the same bytes, read otherwise: the model strips earlier turns' thinking once a new question follows a tool loop, so from segment #3 on the prefix the loop wrote was sent again uncached (the model's rule, nothing in the agent to change: a model that keeps earlier turns' thinking, Sonnet 4.6 or Opus 4.5 and later, reads it)",
    ]);
    expect(driftDetail({ ...base, now: base.before, thinking: 'earlier_reasoning' })).toEqual([
      "the same bytes, read otherwise: OpenAI drops earlier turns' reasoning items once a new question follows a tool loop, so from segment #3 on the prefix the loop wrote was sent again uncached (OpenAI's rule, nothing in the agent to change: keep sending the items back, the tool loop under way reads its own)",
    ]);
    // A model that accepts reasoning.context (GPT-5.6 and newer): what to send instead.
    expect(driftDetail({ ...base, now: base.before, thinking: 'earlier_reasoning', reasoning_context: 'all_turns' })).toEqual([
      `the same bytes, read otherwise: OpenAI drops earlier turns' reasoning items under the request's reasoning.context "current_turn" once a new question follows a tool loop, so from segment #3 on the prefix the loop wrote was sent again uncached (the model accepts reasoning.context: send reasoning: {"context": "all_turns"} and earlier turns' reasoning stays in the prefix, so a new question reads it from cache (it is billed as input, as the cached prefix is))`,
    ]);
    expect(driftDetail({ ...base, formats: { before: 'openai-chat', now: 'openai-responses' } })).toEqual([
      'segment #3 changed: ses_x@2 → ses_x@2 (the API format changed, openai-chat → openai-responses: the same handles serialise to other bytes)',
      `  the changed bytes were not kept (only inline content is, for a while): ${'a'.repeat(12)}… → ${'b'.repeat(12)}…`,
    ]);
  });

  it("names the listed versions no request sent, which have no row: a session's newest turn, sent by its next call", async () => {
    // A user's trial: `report ses_… --versions 3` showed two rows under "5 older versions of 8 left out", the newest nowhere.
    const { key, client } = t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} unsent`);
    const ses = (await client.post('/v1/sessions', { messages: [{ role: 'user', content: 'turn 1' }] })).json;
    const append = async (v: number) => expect((await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: v % 2 ? 'user' : 'assistant', content: `turn ${v}` }] })).status).toBe(201);
    for (let v = 2; v <= 4; v++) await append(v);
    const r = await renderAnthropic(client, { system: [{ type: 'handle', ref: sys.id }], prefix: [ses.id], messages: [{ role: 'user', content: 'go on' }] });
    await report(client, t, r, anthropicUsage(promptTokens(r), 0, r.breakpoints.at(-1)!.token_end));
    for (let v = 5; v <= 6; v++) await append(v);
    const [three, all] = await Promise.all([cli(['report', ses.id, '--versions', '3'], { key }), cli(['report', ses.id], { key })]);
    for (const run of [three, all]) expect(run.code, run.err).toBe(0);
    expect([...three.out.matchAll(/^@(\d+) /gm)].map((m) => Number(m[1]))).toEqual([4]);
    expect(three.out).toContain('\nno row for @5, @6: sent in no request of the range\n3 older versions of 6 left out');
    expect([...all.out.matchAll(/^@(\d+) /gm)].map((m) => Number(m[1]))).toEqual([1, 2, 3, 4]);
    expect(all.out).toContain('\nno row for @5, @6: sent in no request of the range');
    expect(all.out).not.toContain('left out');
  });

  it("lists a long session's newest versions, says how many older ones were left out, and both request counts of each", async () => {
    const { key, client } = t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} session`);
    const ses = (await client.post('/v1/sessions', { messages: [{ role: 'user', content: 'turn 1' }] })).json;
    const send = async () => {
      const r = await renderAnthropic(client, { system: [{ type: 'handle', ref: sys.id }], prefix: [ses.id], messages: [{ role: 'user', content: 'go on' }] });
      await report(client, t, r, anthropicUsage(promptTokens(r), 0, r.breakpoints.at(-1)!.token_end));
      t.clock.advance(MIN);
    };
    // Sent at version 54 and at 60.
    for (let v = 2; v <= 60; v++) {
      if (v === 55) await send();
      expect((await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: v % 2 ? 'user' : 'assistant', content: `turn ${v}` }] })).status).toBe(201);
    }
    await send();
    const [byDefault, five, all, tenantWide, zero, older, badThrough] = await Promise.all([
      cli(['report', ses.id], { key }),
      cli(['report', `${ses.id}@3`, '--versions', '5'], { key }),
      cli(['report', ses.id, '--versions', '1000'], { key }),
      cli(['report', '--versions', '5'], { key }),
      cli(['report', ses.id, '--versions', '0'], { key }),
      cli(['report', ses.id, '--versions-through', '10'], { key }),
      cli(['report', ses.id, '--versions-through', 'latest'], { key }),
    ]);
    for (const run of [byDefault, five, all, older]) expect(run.code, run.err).toBe(0);
    expect(byDefault.out).toContain('10 older versions of 60 left out (in the totals above; --versions-through 10 lists them back from @10, --versions N up to 1,000 at once)');
    expect(five.out).toContain('55 older versions of 60 left out');
    // Paged back as the left-out line says: the oldest ten, nothing older left out, the same totals.
    expect([...older.out.matchAll(/^@(\d+) /gm)].map((m) => Number(m[1]))).toEqual(Array.from({ length: 10 }, (_, i) => 1 + i));
    expect(older.out).not.toContain('left out');
    expect(older.out.split('by version')[0]).toBe(byDefault.out.split('by version')[0]);
    expect(badThrough.code).toBe(2);
    expect(badThrough.err).toContain("--versions-through: a version number from 1 is expected, not 'latest'");
    expect(all.out).not.toContain('left out');
    const rows = (run: Run) => [...run.out.matchAll(/^@(\d+) /gm)].map((m) => Number(m[1]));
    expect(rows(five)).toEqual([56, 57, 58, 59, 60]);
    expect(rows(byDefault)).toEqual(Array.from({ length: 50 }, (_, i) => 11 + i));
    expect(rows(all)).toEqual(Array.from({ length: 60 }, (_, i) => 1 + i));
    // Sent in: the requests that had the version's messages; as newest: those that rendered the session at it.
    expect(five.out).toMatch(/^version +sent in +as newest +referenced /m);
    expect(five.out).toMatch(/^@57 +1 +0 /m);
    expect(five.out).toMatch(/^@60 +1 +1 /m);
    expect(all.out).toMatch(/^@54 +2 +1 /m);
    expect(all.out).toMatch(/^@55 +1 +0 /m);
    expect(all.out).toMatch(/^@2 +2 +0 /m);
    // The totals are the same whatever the rows listed.
    expect(five.out.split('by version')[0]).toBe(all.out.split('by version')[0]);
    expect(tenantWide.code).toBe(2);
    expect(tenantWide.err).toContain('--versions is for a handle report');
    expect(zero.code).toBe(2);
    expect(zero.err).toContain("--versions: a whole number of versions from 1 to 1000 is expected, not '0'");
  });

  it('imports JSONL: renders and reconciles every good line, names every bad one, exits 1', async () => {
    const { id: tenant, key, client } = t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} import`);
    const request = { model: 'claude-sonnet-4-5', max_tokens: 64, prefix: [sys.id], messages: [{ role: 'user', content: 'hello' }] };
    // A render to learn the prompt's size; it is never reconciled, so it counts in no report.
    const probe = await renderAnthropic(client, request);
    const total = promptTokens(probe);
    const cached = probe.breakpoints[0]!.token_end;
    const start = t.clock.now() - 3_600_000;
    const call = (i: number, usage: object, extra: object = {}) =>
      JSON.stringify({
        format: 'anthropic',
        request,
        response: { id: `msg_${i}`, type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'hi' }], stop_reason: 'end_turn', usage },
        started_at: start + i * MIN,
        first_byte_at: start + i * MIN + 400,
        finished_at: new Date(start + i * MIN + 900).toISOString(),
        ...extra,
      });
    const lines = [
      call(1, anthropicUsage(total, cached, 0)), // out of order on purpose: import sorts by started_at
      call(0, anthropicUsage(total, 0, cached)),
      '{"format": "anthropic", "request": ',
      call(2, anthropicUsage(total, 0, 0), { request: { ...request, prefix: ['art_AAAAAAAAAAAAAAAAAAAAA'] } }),
      call(3, { tokens: 'many' }),
      call(4, {}),
      call(5, anthropicUsage(total, 0, 0), { started_at: 1764633600 }),
      call(6, anthropicUsage(total, 0, 0), { first_byte_at: start }),
      // Text the service cannot store (a lone surrogate), in the answer: refused before rendering too.
      call(7, {}, { response: { id: 'msg_7', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'broken \ud800' }], stop_reason: 'end_turn', usage: anthropicUsage(total, 0, 0) } }),
      // A time Date.parse would take but the service refuses (no "T", no offset).
      call(8, anthropicUsage(total, 0, 0), { started_at: '2026-11-24 09:34' }),
      // A log's zone-less time (Python's naive isoformat()): said so.
      call(9, anthropicUsage(total, 0, 0), { started_at: '2026-11-24T09:34:00.123456' }),
    ];
    const r = await cli(['import', file('calls.jsonl', `${lines.join('\n')}\n\n`)], { key });
    expect(r.code, r.err).toBe(1);
    expect(r.out).toContain('11 lines, 2 accepted, 9 rejected');
    expect(r.out).toMatch(/^ {2}line 10: "started_at" is not epoch ms or RFC 3339$/m);
    expect(r.out).toMatch(/^ {2}line 11: "started_at" is not epoch ms or RFC 3339: "2026-11-24T09:34:00.123456" has no zone \(add Z for UTC, or \+01:00\)$/m);
    expect(r.out).toMatch(/^ {2}line 9: invalid_request: string contains a lone UTF-16 surrogate .*\(\/response\/content\/0\/text/m);
    expect(r.out).toMatch(/^ {2}line 7: "started_at" is before 1973: epoch milliseconds are expected, this looks like seconds$/m);
    expect(r.out).toMatch(/^ {2}line 8: times must satisfy started_at <= first_byte_at <= finished_at$/m);
    expect(r.out).toMatch(/^ {2}line 3: not valid JSON/m);
    expect(r.out).toMatch(/^ {2}line 4: not_found: .*art_AAAAAAAAAAAAAAAAAAAAA.*\(\/request\/prefix\/0\)/m);
    expect(r.out).toMatch(/^ {2}line 5: invalid_request: .*\(\/response/m);
    expect(r.out).toMatch(/^ {2}line 6: invalid_request: the usage cannot be read \(\/response\/usage\/input_tokens: input_tokens is missing\)$/m);
    // A line whose usage or times would be refused is refused before it is rendered: no request is left unreconciled.
    expect(t.sqlite.prepare("select count(*) from requests where status = 'rendered' and tenant_id = ?").pluck().get(tenant)).toBe(1);
    expect(r.out).not.toMatch(/line [12]:/);
    // Not a terminal: plain progress lines, no carriage returns.
    expect(r.err).toContain('import: 11/11 lines read, 2 accepted, 9 rejected');
    expect(r.err).not.toContain('\r');

    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.requests).toBe(2);
    expect(rep.tokens.cold).toBe(cached);
    expect(rep.tokens.captured).toBe(cached);

    // A call a minute before those, imported after them: accepted, applied after them, and said so.
    const older = await cli(['import', file('older.jsonl', `${call(-1, anthropicUsage(total, 0, cached))}\n`)], { key });
    expect(older.code, older.err).toBe(0);
    expect(older.out).toContain('1 accepted but applied after later calls of their model (import older logs first)');
    // '-' reads the lines from stdin, as mint does.
    const piped = await cli(['import', '-'], { key, input: `${call(-2, anthropicUsage(total, 0, cached))}\n` });
    expect(piped.code, piped.err).toBe(0);
    expect(piped.out).toContain('stdin: 1 line, 1 accepted, 0 rejected');
    expect(piped.out).not.toContain('referenced no handle');
    // Logs as an agent wrote them, the system prompt inline: accepted, and said to be on no handle's report, counted
    // apart on the tenant's (it said "on no report", and the tenant report's no_handle counted the call).
    const before = (await client.get('/v1/reports')).json.no_handle.requests;
    const inline = await cli(['import', '-'], { key, input: `${call(-3, anthropicUsage(total, 0, 0), { request: { ...request, prefix: undefined, system: LONG_SYSTEM } })}\n` });
    expect(inline.code, inline.err).toBe(0);
    expect(inline.out).toContain("stdin: 1 line, 1 accepted, 0 rejected\n1 accepted but referenced no handle: recorded (GET /v1/requests), on no handle's report (the tenant report counts them apart, as calls that referenced no handle)");
    expect(inline.out).not.toContain('on no report');
    expect((await client.get('/v1/reports')).json.no_handle.requests).toBe(before + 1);
    expect((await client.get(`/v1/reports/handles/${sys.id}`)).json.requests).toBe(4);
  });

  it('import: a line given twice (the same text, or the same response id) is imported once, the repeat skipped and named, exit 0', async () => {
    const { key, client } = t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} duplicates`);
    const started = t.clock.now() - 3_600_000;
    const line = (i: number, id: string, extra: object = {}) =>
      JSON.stringify({
        format: 'openai-chat',
        request: { model: 'gpt-4.1', prefix: [sys.id], messages: [{ role: 'user', content: `question ${i}` }] },
        response: { id, object: 'chat.completion', usage: { prompt_tokens: 2000, completion_tokens: 1, total_tokens: 2001, prompt_tokens_details: { cached_tokens: 0 } } },
        started_at: started + i * MIN,
        ...extra,
      });
    const lines = [
      line(0, 'chatcmpl-a'),
      line(1, 'chatcmpl-b'),
      line(0, 'chatcmpl-a'), // a shipper's retry: the very same line
      line(1, 'chatcmpl-b', { logged_at: started + MIN + 5 }), // logged again with a field of the logger's own
      line(2, 'chatcmpl-c'),
      // A server that repeats ids (Ollama's are chatcmpl- and 3 digits): another call, started later, is imported.
      line(3, 'chatcmpl-c'),
    ];
    const r = await cli(['import', '-'], { key, input: `${lines.join('\n')}\n` });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('stdin: 6 lines, 4 accepted, 0 rejected, 2 duplicates skipped\n');
    expect(r.out).toMatch(/^ {2}line 3: the same line as line 1: skipped$/m);
    expect(r.out).toMatch(/^ {2}line 4: the same response id \(chatcmpl-b\) and start as line 2: skipped$/m);
    // Each call counted once: before, the report counted 6 requests.
    expect((await client.get(`/v1/reports/handles/${sys.id}`)).json.requests).toBe(4);
    // Listed with when each call started, not only when the import rendered it (all three at the same moment).
    const listed = await cli(['requests', '--handle', sys.id], { key });
    expect(listed.out).toMatch(/^rendered +started +request /);
    const rendered = new Date(t.clock.now()).toISOString();
    for (const i of [0, 1, 2, 3]) expect(listed.out).toMatch(new RegExp(`^${rendered} +${new Date(started + i * MIN).toISOString()} +req_\\w{21} +reconciled +gpt-4\\.1 `, 'm'));
  });

  it('import: run again after fixing a rejected line, only that line is imported; the calls recorded before are skipped, each counted once', async () => {
    const { key, client } = t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} run again`);
    const started = t.clock.now() - 3_600_000;
    const line = (i: number, usage: object) =>
      JSON.stringify({ format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [sys.id], messages: [{ role: 'user', content: `question ${i}` }] }, usage, started_at: started + i * MIN });
    const usage = (cached: number) => ({ prompt_tokens: 2000, completion_tokens: 1, total_tokens: 2001, prompt_tokens_details: { cached_tokens: cached } });
    // Two calls alike (a fan-out logged with one start and the same counts) are two calls: both imported, and skipped again.
    const good = [line(0, usage(0)), line(1, usage(1920)), line(1, usage(1920)).replace('question 1', 'question 1b')];
    const first = await cli(['import', file('run.jsonl', `${[...good, line(2, { prompt_tokens: 'many' })].join('\n')}\n`)], { key });
    expect(first.code, first.err).toBe(1);
    expect(first.out).toContain('run.jsonl: 4 lines, 3 accepted, 1 rejected\n');
    const before = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(before.requests).toBe(3);
    const again = await cli(['import', file('run.jsonl', `${[...good, line(2, usage(1920))].join('\n')}\n`)], { key });
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('run.jsonl: 4 lines, 1 accepted, 0 rejected, 3 already imported\n');
    expect(again.out).toContain('3 lines already imported, skipped (a reconciled request of the same model, start and provider counts is recorded: its call counted once): lines 1, 2, 3\n');
    const after = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    // Four calls, each once (before, seven: the three accepted the first time counted twice).
    expect(after.requests).toBe(4);
    expect(after.requests_with.referenced).toBe(4);
    // gpt-4.1 at $2/M: the money of the four calls' system prompt tokens, to the micro-dollar, the fourth's added once.
    expect(after.money.cost_without_caching).toBe(Math.round(after.tokens.referenced * 2) / 1e6);
    expect(after.tokens.referenced - before.tokens.referenced).toBeLessThan(before.tokens.referenced / 2);
    // A third run imports nothing and changes no figure.
    const third = await cli(['import', file('run.jsonl', `${[...good, line(2, usage(1920))].join('\n')}\n`)], { key });
    expect(third.out).toContain('run.jsonl: 4 lines, 0 accepted, 0 rejected, 4 already imported\n');
    expect((await client.get(`/v1/reports/handles/${sys.id}`)).json.money).toEqual(after.money);
  });

  it('import: a rejected line given twice is rejected twice, not skipped as a duplicate of a call imported once', async () => {
    const { key } = t.tenant();
    const bad = JSON.stringify({ format: 'openai-chat', request: { model: 'gpt-4.1', messages: [{ role: 'user', content: 'q' }] }, started_at: 'yesterday' });
    const r = await cli(['import', '-'], { key, input: `${bad}\n${bad}\n` });
    expect(r.code).toBe(1);
    // Before: '0 accepted, 1 rejected, 1 duplicate skipped' and 'its call imported once', of a call never imported.
    expect(r.out).toContain('stdin: 2 lines, 0 accepted, 2 rejected\n');
    expect(r.out).not.toContain('duplicate');
  });

  it('import: a line whose only handle renders nothing (an empty session) referenced a handle, and the summary says it has 0 tokens', async () => {
    const { key, client } = t.tenant();
    const started = t.clock.now() - 3_600_000;
    const line = (i: number, request: object) =>
      JSON.stringify({
        format: 'openai-chat',
        request: { model: 'gpt-4.1', ...request },
        usage: { prompt_tokens: 20, completion_tokens: 1, total_tokens: 21, prompt_tokens_details: { cached_tokens: 0 } },
        started_at: started + i * MIN,
      });
    const question = { role: 'user', content: 'hello' };
    const inPrefix = (await client.post('/v1/sessions', {})).json.id as string;
    const inMessages = (await client.post('/v1/sessions', {})).json.id as string;
    const lines = [
      line(0, { prefix: [inPrefix], messages: [question] }),
      // A session placed in the messages, not in "prefix": a handle all the same.
      line(1, { messages: [{ type: 'handle', ref: inMessages }, question] }),
      line(2, { messages: [question] }),
    ];
    const r = await cli(['import', '-'], { key, input: `${lines.join('\n')}\n` });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('stdin: 3 lines, 3 accepted, 0 rejected\n');
    expect(r.out).toMatch(/^1 accepted but referenced no handle:/m);
    expect(r.out).toMatch(/^2 accepted whose handles rendered nothing \(a session with no turns yet\): listed under them \(GET \/v1\/requests\?handle=\), with 0 tokens on their reports$/m);
    // As the service has them: each listed under its session.
    for (const id of [inPrefix, inMessages]) expect((await client.get(`/v1/requests?handle=${id}`)).json.requests, id).toHaveLength(1);
  });

  it('verify --write: a lock file it cannot write is one line and exit 1, nothing said locked; a wrong --format is a usage error', async () => {
    const { key, client } = t.tenant();
    const stable = await mintSystem(client, 'You are a careful assistant, locked nowhere.');
    const nowhere = join(dir, 'no-such-dir', 'prefix.lock.json');
    const [unwritable, badFormat] = await Promise.all([
      cli(['verify', '--write', nowhere, stable.ref], { key }),
      cli(['verify', '--write', join(dir, 'never.lock.json'), stable.ref, '--format', 'bogus'], { key }),
    ]);
    expect(unwritable.code, unwritable.err).toBe(1);
    expect(unwritable.err.trim()).toMatch(new RegExp(`^cannot write ${nowhere}: ENOENT: .* \\(nothing was locked\\)$`));
    expect(unwritable.out).toBe('');
    expect(badFormat.code).toBe(2);
    expect(badFormat.err).toContain("--format: one of neutral, anthropic, openai-chat, openai-responses, gemini (got 'bogus')");
    expect(existsSync(join(dir, 'never.lock.json'))).toBe(false);
  });

  it('verify: passes on an unchanged lock; fails naming changed bytes and volatile content', async () => {
    const { key, client } = t.tenant();
    const stable = await mintSystem(client, 'You are a careful, stable assistant.');
    const dated = await mintArtifact(client, 'system', 'You are helpful. Today is 2026-01-01T12:00:00Z.');
    const lock = join(dir, 'prefix.lock.json');
    const written = await cli(['verify', '--write', lock, stable.ref, dated.ref], { key });
    expect(written.code, written.err).toBe(0);
    expect(written.err).toContain(`warning: ${dated.ref}: 1 volatile value: iso_timestamp "2026-01-01T12:00:00Z"`);
    const entries = JSON.parse(readFileSync(lock, 'utf8')).handles;
    expect(entries[stable.ref]).toEqual({ format: 'anthropic', sha256: sha256(await apiBytes(key, `/v1/handles/${stable.ref}/expand?format=anthropic`)) });

    const good = file('good.lock.json', JSON.stringify({ handles: { [stable.ref]: entries[stable.ref] } }));
    const bad = file('bad.lock.json', JSON.stringify({ handles: { [stable.ref]: { ...entries[stable.ref], sha256: '0'.repeat(64) }, [dated.ref]: entries[dated.ref] } }));
    const [pass, fail] = await Promise.all([cli(['verify', good], { key }), cli(['verify', bad], { key })]);
    expect(pass.code, pass.err).toBe(0);
    expect(pass.out).toContain(`ok    ${stable.ref}`);
    expect(fail.code).toBe(1);
    expect(fail.out).toContain(`FAIL  ${stable.ref}  bytes changed: locked ${'0'.repeat(64)}, now ${entries[stable.ref].sha256}`);
    expect(fail.out).toContain(`FAIL  ${dated.ref}  1 volatile value: iso_timestamp`);
    expect(fail.err).toContain(`verify: 2 of 2 handles failed: ${stable.ref}, ${dated.ref}`);
    // No lock file yet (the README's CI line run first): said how to make one.
    const none = await cli(['verify', join(dir, 'no.lock.json')], { key });
    expect(none.code).toBe(1);
    expect(none.err).toBe(`no lock file ${join(dir, 'no.lock.json')}: make it once with 'prefix-handles verify --write ${join(dir, 'no.lock.json')} <ref>…' and commit it\n`);
  });

  it('verify --write: a file outside the repository (../, an absolute path elsewhere, a link out) is a usage error saying why; inside it, from a lock in a subdirectory, it locks', async () => {
    const { key, client } = t.tenant();
    const text = 'You are Nova, kept in the repository.\n';
    const sys = await mintArtifact(client, 'system', text);
    const repo = join(dir, 'outside-check', 'repo');
    mkdirSync(join(repo, '.git'), { recursive: true });
    mkdirSync(join(repo, 'ci'), { recursive: true });
    mkdirSync(join(repo, 'prompts'), { recursive: true });
    const inside = file('outside-check/repo/prompts/nova.txt', text);
    const above = file('outside-check/nova.txt', text);
    symlinkSync(above, join(repo, 'prompts', 'linked.txt'));
    const lock = join(repo, 'ci', 'prefix.lock.json');
    const refused = await Promise.all([
      cli(['verify', '--write', lock, `${sys.ref}=${join(repo, '..', 'nova.txt')}`], { key }),
      cli(['verify', '--write', lock, `${sys.ref}=${above}`], { key }),
      cli(['verify', '--write', lock, `${sys.ref}=${join(repo, 'prompts', 'linked.txt')}`], { key }),
    ]);
    for (const r of refused) {
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(
        ` is outside the repository (${realpathSync(repo)}): a lock file that names a file outside the repository cannot be checked in CI elsewhere, where only the repository is checked out; keep the file in it (nothing was locked)`,
      );
      expect(r.out).toBe('');
    }
    expect(existsSync(lock)).toBe(false);
    // The repository is the directory holding .git: a lock in ci/ names ../prompts/nova.txt.
    const locked = await cli(['verify', '--write', lock, `${sys.ref}=${inside}`], { key });
    expect(locked.code, locked.err).toBe(0);
    expect(JSON.parse(readFileSync(lock, 'utf8')).handles[sys.ref].file).toBe('../prompts/nova.txt');
    // Without a .git above it, the lock file's own directory is the bound.
    const plain = join(dir, 'outside-check', 'plain');
    mkdirSync(plain, { recursive: true });
    const loose = await cli(['verify', '--write', join(plain, 'prefix.lock.json'), `${sys.ref}=${above}`], { key });
    expect(loose.code).toBe(2);
    expect(loose.err).toContain(`${above} is outside the lock file's directory (${realpathSync(plain)}; no .git above it): a lock file that names a file outside the repository`);
    // A lock edited by hand to name one: that entry fails, saying so.
    const edited = file('outside-check/repo/ci/edited.lock.json', JSON.stringify({ handles: { [sys.ref]: { ...JSON.parse(readFileSync(lock, 'utf8')).handles[sys.ref], file: '../../nova.txt' } } }));
    const checked = await cli(['verify', edited], { key });
    expect(checked.code).toBe(1);
    expect(checked.out).toContain(`FAIL  ${sys.ref}  ${join(repo, '..', 'nova.txt')} is outside the repository`);
  });

  it('verify --write: a file in the repository named through a link from outside it is locked by its path in the repository, not by the link (which CI does not have)', async () => {
    const { key, client } = t.tenant();
    const text = 'You are Vega, kept in the repository.\n';
    const sys = await mintArtifact(client, 'system', text);
    const repo = join(dir, 'linked-in', 'repo');
    mkdirSync(join(repo, '.git'), { recursive: true });
    mkdirSync(join(repo, 'ci'), { recursive: true });
    mkdirSync(join(repo, 'prompts'), { recursive: true });
    file('linked-in/repo/prompts/vega.txt', text);
    // A directory outside the repository that is a link to its prompts/ (a workspace alias, say).
    symlinkSync(join(repo, 'prompts'), join(dir, 'linked-in', 'alias'));
    const lock = join(repo, 'ci', 'prefix.lock.json');
    const locked = await cli(['verify', '--write', lock, `${sys.ref}=${join(dir, 'linked-in', 'alias', 'vega.txt')}`], { key });
    expect(locked.code, locked.err).toBe(0);
    expect(JSON.parse(readFileSync(lock, 'utf8')).handles[sys.ref].file).toBe('../prompts/vega.txt');
    // A lock edited by hand to name it through the link fails that entry: the path leaves the repository.
    const edited = file('linked-in/repo/ci/edited.lock.json', JSON.stringify({ handles: { [sys.ref]: { ...JSON.parse(readFileSync(lock, 'utf8')).handles[sys.ref], file: '../../alias/vega.txt' } } }));
    const checked = await cli(['verify', edited], { key });
    expect(checked.code).toBe(1);
    expect(checked.out).toContain(`FAIL  ${sys.ref}  ${join(repo, '..', 'alias', 'vega.txt')} is outside the repository`);
    const good = await cli(['verify', lock], { key });
    expect(good.code, good.out + good.err).toBe(0);
  });

  it('mint tools: a tool version no catalog model has a token figure for is minted, and said on stderr', async () => {
    const { key } = t.tenant();
    const tools = file('future-tools.json', JSON.stringify([{ type: 'bash_20990101', name: 'bash' }]));
    const r = await cli(['mint', 'tools', tools], { key });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^art_\w{21}@1\t[0-9a-f]{64}\n$/);
    expect(r.err).toContain('warning tool_tokens_estimated: the catalog has no token figure for the Anthropic-defined tool "bash" (bash_20990101) on any model: it is sent as given, and its tokens are estimated from its JSON');
  });

  it('verify: an artifact locked with its file (<ref>=<file>) fails once the file is edited and not minted; minting and locking the new version passes', async () => {
    const { key } = t.tenant();
    mkdirSync(join(dir, 'repo', 'prompts'), { recursive: true });
    const sysFile = file('repo/prompts/support.txt', 'You are Nova, the support agent. Be brief.\n');
    const toolsFile = file('repo/prompts/tools.json', JSON.stringify([{ name: 'lookup_order', description: 'An order by id', input_schema: { type: 'object', properties: { id: { type: 'string' } } } }], null, 2));
    const lock = join(dir, 'repo', 'prefix.lock.json');
    const refOf = (r: Run) => r.out.split('\t')[0]!;
    const sys = refOf(await cli(['mint', 'system', sysFile], { key }));
    const tools = refOf(await cli(['mint', 'tools', toolsFile], { key }));
    const written = await cli(['verify', '--write', lock, `${sys}=${sysFile}`, `${tools}=${toolsFile}`], { key });
    expect(written.code, written.err).toBe(0);
    expect(JSON.parse(readFileSync(lock, 'utf8')).handles[sys]).toMatchObject({ file: 'prompts/support.txt' });
    expect((await cli(['verify', lock], { key })).code).toBe(0);

    // The same tools with their keys in another order are the same content (RFC 8785): nothing to take.
    file('repo/prompts/tools.json', JSON.stringify([{ input_schema: { properties: { id: { type: 'string' } }, type: 'object' }, description: 'An order by id', name: 'lookup_order' }]));
    // An edit of the prompt, committed without minting it: the lock still names the old version. Before, verify passed.
    file('repo/prompts/support.txt', 'You are Nova, the support agent. Be brief. Greet by name.\n');
    const edited = await cli(['verify', lock], { key });
    expect(edited.code).toBe(1);
    expect(edited.out).toContain(`ok    ${tools}  anthropic  `);
    expect(edited.out).toMatch(new RegExp(`^FAIL  ${sys}  prompts/support.txt changed: it is no longer ${sys}'s content .*'prefix-handles mint system prompts/support.txt --version-of ${sys.split('@')[0]}'`, 'm'));
    // Locking a version that is not the file's content is refused, nothing written.
    const wrong = await cli(['verify', '--write', lock, `${sys}=${sysFile}`], { key });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain(`is not ${sys}'s content`);

    // The fix: mint the edit as the next version and lock it with the file; the old version leaves the lock.
    const next = refOf(await cli(['mint', 'system', sysFile, '--version-of', sys.split('@')[0]!], { key }));
    expect(next).toBe(`${sys.split('@')[0]}@2`);
    const relocked = await cli(['verify', '--write', lock, `${next}=${sysFile}`], { key });
    expect(relocked.out).toContain(`unlocked  ${sys}  (prompts/support.txt is ${next} now)`);
    expect(Object.keys(JSON.parse(readFileSync(lock, 'utf8')).handles).sort()).toEqual([next, tools].sort());
    const fixed = await cli(['verify', lock], { key });
    expect(fixed.code, fixed.out).toBe(0);
    expect(fixed.out).toContain(`ok    ${next}  anthropic  `);
    // A file the lock names that is gone fails its handle alone.
    file('repo/prompts/tools.json', '');
    const broken = await cli(['verify', lock], { key });
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(new RegExp(`^FAIL  ${tools}  .*prompts/tools.json: not valid JSON`, 'm'));
    expect(broken.out).toContain(`ok    ${next}`);
  });

  it('serve on a port in use says so in one line and exits 2 (no stack trace)', async () => {
    const taken = createNetServer();
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    try {
      const port = (taken.address() as AddressInfo).port;
      const data = join(dir, 'taken');
      mkdirSync(data);
      const r = await cli(['serve', '--port', String(port), '--data-dir', data]);
      expect(r.code).toBe(2);
      expect(r.err.trim()).toBe(`cannot listen on 127.0.0.1:${port}: the port is in use (set by PORT and HOST, or serve's --port and --host)`);
      // Nothing was handed out: no key file (a start that worked would create one).
      expect(existsSync(join(data, 'api-key'))).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('serve with PH_UPSTREAM=simulator on a PH_SIMULATOR_PORT in use says so in one line and exits 2 (no stack trace)', async () => {
    const taken = createNetServer();
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    try {
      const port = (taken.address() as AddressInfo).port;
      const data = join(dir, 'simulator-taken');
      mkdirSync(data);
      // It was an EADDRINUSE stack trace and exit 1, as a bug would be.
      const r = await cli(['serve', '--port', '0', '--data-dir', data], { env: { PH_UPSTREAM: 'simulator', PH_SIMULATOR_PORT: String(port) } });
      expect(r.code, r.err).toBe(2);
      expect(r.err.trim()).toBe(`cannot listen on 127.0.0.1:${port} for the provider simulator: the port is in use (set by PH_SIMULATOR_PORT; 0: any free port)`);
      expect(existsSync(join(data, 'api-key'))).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('serve with a PH_CATALOG_FILE it cannot read names the variable, and exits 2', async () => {
    const data = join(dir, 'bad-catalog');
    mkdirSync(data);
    const missing = join(dir, 'no-such-catalog.json');
    const r = await cli(['serve', '--port', '0', '--data-dir', data], { env: { PH_CATALOG_FILE: missing } });
    expect(r.code, r.err).toBe(2);
    // It said which file and why, but not which setting named it.
    expect(r.err.trim().split('\n')).toEqual([`Invalid model catalog ${missing}:`, expect.stringMatching(/^ {2}- \(root\): cannot read file: ENOENT/), '  (set by PH_CATALOG_FILE)']);
  });

  it('serve with a data dir or database it cannot use says so in one line and exits 2 (no stack trace)', async () => {
    const notADir = file('plain-file', 'not a directory');
    const notADb = file('not-a-db.db', 'this file is not a SQLite database');
    const [underFile, wrongFile] = await Promise.all([
      cli(['serve', '--port', '0', '--data-dir', join(notADir, 'data')]),
      cli(['serve', '--port', '0', '--data-dir', join(dir, 'wrong-db')], { env: { PH_DATABASE: notADb } }),
    ]);
    expect(underFile.code, underFile.err).toBe(2);
    expect(underFile.err.trim()).toMatch(new RegExp(`^cannot open the database ${notADir}/data/prefix-handles\\.db: ENOTDIR: .*\\(set by PH_DATABASE or PH_DATA_DIR, or serve's --data-dir\\)$`));
    expect(wrongFile.code, wrongFile.err).toBe(2);
    expect(wrongFile.err.trim()).toBe(`cannot open the database ${notADb}: file is not a database (set by PH_DATABASE or PH_DATA_DIR, or serve's --data-dir)`);
    expect(readFileSync(notADb, 'utf8')).toBe('this file is not a SQLite database');
  });

  it('serve with PH_UPSTREAM=simulator: the simulator listens on PH_SIMULATOR_PORT and answers there', async () => {
    const data = join(dir, 'served-sim');
    mkdirSync(data);
    const free = createNetServer().listen(0, '127.0.0.1');
    await new Promise((ok) => free.once('listening', ok));
    const port = (free.address() as AddressInfo).port;
    await new Promise((ok) => free.close(ok));
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', data], { env: { ...cleanEnv(), PH_UPSTREAM: 'simulator', PH_SIMULATOR_PORT: String(port) } });
    try {
      const simulator = await new Promise<string>((ok, fail) => {
        let seen = '';
        child.stdout.on('data', (b: Buffer) => {
          seen += b.toString();
          const m = /provider simulator at (http:\/\/\S+)/.exec(seen);
          if (m && /listening on/.test(seen)) ok(m[1]!);
        });
        child.on('exit', (code) => fail(new Error(`serve exited with ${code}: ${seen}`)));
      });
      expect(simulator).toBe(`http://127.0.0.1:${port}`);
      const models = await fetch(`${simulator}/v1/models`, { headers: { 'x-api-key': 'sk-ant-any' } });
      expect(models.status).toBe(200);
    } finally {
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('serve starts the service; the other commands find its key file; no key is exit 1', async () => {
    const data = join(dir, 'served');
    mkdirSync(data);
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', data], { env: cleanEnv() });
    try {
      const served = await new Promise<string>((ok, fail) => {
        let seen = '';
        child.stdout.on('data', (b: Buffer) => {
          seen += b.toString();
          const m = /listening on (http:\/\/\S+)/.exec(seen);
          if (m) ok(m[1]!);
        });
        child.on('exit', (code) => fail(new Error(`serve exited with ${code}`)));
      });
      const [viaKeyFile, noKey] = await Promise.all([cli(['report'], { env: { PH_URL: served, PH_DATA_DIR: data } }), cli(['report'])]);
      expect(viaKeyFile.code, viaKeyFile.err).toBe(0);
      expect(viaKeyFile.out).toContain('requests 0');
      expect(noKey.code).toBe(1);
      expect(noKey.err).toContain('no API key: pass --key, set PH_API_KEY');
      // The service runs with the young generation of `npm start`: the CLI started itself again with the flag
      // (read from /proc: CI runs on Linux).
      const [server] = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ');
      expect(readFileSync(`/proc/${server}/cmdline`, 'utf8').split('\0')).toContain('--max-semi-space-size=64');
    } finally {
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      await exited;
    }
  });
});
