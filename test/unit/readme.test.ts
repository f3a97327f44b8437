// The README's lists of what the code has — its own sections and links, the environment variables and their defaults,
// the routes and their query parameters, the CLI's commands and options, the layout, the paths and npm scripts it
// names, the packages — checked against the code, so neither drifts from the other unnoticed.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../src/client/generate';
import { COMMANDS } from '../../src/cli/commands/index';
import { loadConfig } from '../../src/config';
import { Metrics } from '../../src/http/metrics';
import { PROBLEM_CODES, statusOf, type ProblemCode } from '../../src/http/problem';
import { COOKIE } from '../../src/http/ui/session';

const ROOT = new URL('../../', import.meta.url);
const README = readFileSync(new URL('README.md', ROOT), 'utf8');
/** The README without its fenced code blocks (a shell comment is not a heading). */
const PROSE = README.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
const HEADINGS = [...PROSE.matchAll(/^(#{2,4}) (.+)$/gm)].map((m) => ({ level: m[1]!.length, text: m[2]!, at: m.index }));

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string) => heading.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-');

/** The text from a heading (of that level, when given) to the next heading of its level or above. */
function section(heading: string, level?: number): string {
  const i = HEADINGS.findIndex((h) => h.text === heading && (level === undefined || h.level === level));
  if (i < 0) throw new Error(`the README has no heading "${heading}"`);
  const next = HEADINGS.slice(i + 1).find((h) => h.level <= HEADINGS[i]!.level);
  return PROSE.slice(HEADINGS[i]!.at, next?.at);
}

/** A table's rows in some text: their first cell, and their second. */
const rows = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('| `') || /^\| [@a-z]/.test(l))
    .map((l) => {
      const [first, second] = l.slice(2).split(' | ');
      return { first: first!, second: second ?? '' };
    });

/** The rows of the table whose header's first cell is `first` (`| command | |`), to the table's end. */
function table(text: string, first: string) {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`| ${first} |`));
  if (start < 0) throw new Error(`no table headed "${first}"`);
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  return rows(lines.slice(start + 2, end < 0 ? undefined : end).join('\n'));
}

describe('the README', () => {
  it('Contents links every section after it, and every in-page link names a heading', () => {
    const contents = section('Contents');
    const after = HEADINGS.filter((h) => h.level === 2 && h.at > HEADINGS.find((c) => c.text === 'Contents')!.at);
    expect(after.length).toBeGreaterThan(10);
    for (const h of after) expect(contents, `Contents does not link "${h.text}"`).toContain(`](#${slug(h.text)})`);
    const anchors = new Set(HEADINGS.map((h) => slug(h.text)));
    const links = [...README.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(10);
    expect(links.filter((l) => !anchors.has(l))).toEqual([]);
  });

  it('every "see *X*" names a section: a heading, or a paragraph or bullet that opens with X', () => {
    const names = new Set([
      ...HEADINGS.flatMap((h) => [h.text, h.text.split(':')[0]!]),
      // `**CSV exports.**`, `- **Token estimates** count…`
      ...[...PROSE.matchAll(/^(?:- )?\*\*([^*]+?)\.?\*\*/gm)].map((m) => m[1]!),
      // `Stopping: on SIGTERM…`, `Backups: …`
      ...[...PROSE.matchAll(/^([A-Z][a-z]+(?: [a-z]+)?):/gm)].map((m) => m[1]!),
    ]);
    const seen = [...PROSE.matchAll(/\b[Ss]ee \*([^*]+)\*/g)].map((m) => m[1]!.replace(/\s+/g, ' '));
    expect(seen.length).toBeGreaterThan(30);
    expect([...new Set(seen)].filter((s) => !names.has(s))).toEqual([]);
  });

  describe('Configuration', () => {
    // The service's table, and the proxy's own.
    const tables = [...rows(section('Configuration', 2)), ...rows(section('Configuration', 3))];
    const documented = tables.flatMap((r) => [...r.first.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!));
    /** Whether the service reads the name (or lets it be, as the CLI's), rather than refusing it as a misspelling. */
    const known = (name: string) => {
      try {
        loadConfig({ PH_UPSTREAM: 'simulator', [name]: '1' });
        return true;
      } catch (err) {
        return !String(err).includes(`${name}: not a variable of the service`);
      }
    };
    /** Read by the CLI, or set by Kubernetes: named in the section's text, not settings of the table. */
    const NOT_SETTINGS = ['PH_URL', 'PH_API_KEY', 'PH_SERVICE_HOST', 'PH_PORT_8787_TCP_ADDR'];

    it('names every PH_ variable the code reads, in its tables (the CLI\'s and Kubernetes\' in its text), and none it does not', () => {
      const files = (dir: string): string[] => readdirSync(new URL(dir, ROOT), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(`${dir}${e.name}/`) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : []));
      const read = new Set([...files('src/'), ...files('bin/')].flatMap((f) => readFileSync(new URL(f, ROOT), 'utf8').match(/\bPH_[A-Z0-9_]+\b/g) ?? []));
      // The misspellings the code's comments and messages give as examples (PH_ADMINKEY) are refused, so not read.
      const variables = [...read].filter(known);
      expect(variables.length).toBeGreaterThan(25);
      expect(variables.filter((v) => !NOT_SETTINGS.includes(v) && !documented.includes(v))).toEqual([]);
      for (const v of NOT_SETTINGS) expect(section('Configuration', 2)).toContain(`\`${v}\``);
      expect(documented.filter((v) => !known(v))).toEqual([]);
    });

    it("gives each variable's default as the service has it", () => {
      let checked = 0;
      for (const { first, second } of tables) {
        const names = [...first.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!);
        const defaults = second.split(/,\s*/);
        if (names.length !== defaults.length) continue;
        names.forEach((name, i) => {
          const text = defaults[i]!.trim();
          const number = /^(\d+)(?: (KiB|MiB))?(?: \(.*\))?$/.exec(text);
          const literal = /^`([^`<]+)`$/.exec(text)?.[1];
          const value = number ? String(Number(number[1]) * (number[2] === 'MiB' ? 1024 * 1024 : number[2] === 'KiB' ? 1024 : 1)) : literal;
          if (value === undefined) return; // `unset`, `<data dir>/…`: no value to give
          const base = name === 'PH_SIMULATOR_PORT' ? { PH_UPSTREAM: 'simulator' } : {};
          expect(loadConfig({ ...base, [name]: value }), `${name}'s documented default, ${text}`).toEqual(loadConfig(base));
          checked++;
        });
      }
      expect(checked).toBeGreaterThan(20);
    });
  });

  it('the API tables list every route of /openapi.json, and none it does not have', async () => {
    const doc = (await openApiDocument()) as { paths: Record<string, Record<string, unknown>> };
    // Gemini's routes are served under v1beta as under v1; the table names them once.
    const served = new Set(
      Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).filter((m) => m !== 'parameters').map((m) => `${m.toUpperCase()} ${path.replace('/gemini/v1beta/', '/gemini/v1/')}`)),
    );
    const text = section('API') + section('The drop-in proxy for the official SDKs').split('### Headers')[0]!;
    const listed = new Set(
      rows(text).flatMap((r) =>
        [...r.first.matchAll(/`(GET|POST|PATCH|DELETE|PUT) ([^`?]+)[^`]*`( \(and `models\/\{id\}`\))?/g)].flatMap((m) => {
          const route = `${m[1]} ${m[2]}`;
          return m[3] ? [route, `${route}/{id}`] : [route];
        }),
      ),
    );
    expect(served.size).toBeGreaterThan(30);
    expect([...served].filter((r) => !listed.has(r)).sort()).toEqual([]);
    expect([...listed].filter((r) => !served.has(r)).sort()).toEqual([]);
  });

  it('each query parameter a route\'s line names is one /openapi.json gives it, and each one it gives is named', async () => {
    const doc = (await openApiDocument()) as { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>> };
    const query = (method: string, path: string) => (doc.paths[path]?.[method.toLowerCase()]?.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
    // The entries that define routes: a table row (its first cell the routes), a bullet with its indented lines (its
    // opening the route: `- \`GET /v1/reports?from=&to=…\``).
    const lines = README.split('\n');
    const entries = lines.flatMap((line, i) => {
      if (!/^(\| |- )`(GET|POST|PATCH|DELETE) \/v1\//.test(line)) return [];
      if (line.startsWith('| ')) return [{ head: line.split(' | ')[0]!, text: line }];
      const end = lines.findIndex((l, j) => j > i && !l.startsWith('  '));
      return [{ head: /^- `[^`]+`/.exec(line)![0], text: lines.slice(i, end).join('\n') }];
    });
    const routes = (head: string) => [...head.matchAll(/`(GET|POST|PATCH|DELETE) (\/v1\/[^`?]+)(?:\?([^`]+))?`/g)].map((m) => ({ route: `${m[1]} ${m[2]}`, params: m[3]?.split('&').map((q) => q.split('=')[0]!) ?? [] }));
    const named = entries.flatMap((e) => routes(e.head).flatMap(({ route, params }) => params.map((name) => ({ route, name }))));
    expect(named.length).toBeGreaterThan(30);
    expect(named.filter(({ route, name }) => !query(...(route.split(' ') as [string, string])).includes(name))).toEqual([]);
    // Each one the route takes is named in an entry of that route (`limit=` in another route's does not count).
    const given = Object.entries(doc.paths).filter(([path]) => path.startsWith('/v1/')).flatMap(([path, ops]) => Object.keys(ops).flatMap((m) => query(m, path).map((name) => ({ route: `${m.toUpperCase()} ${path}`, name }))));
    expect(given.length).toBeGreaterThan(20);
    const isNamed = ({ route, name }: { route: string; name: string }) => entries.some((e) => routes(e.head).some((r) => r.route === route) && e.text.includes(`${name}=`));
    expect(given.filter((g) => !isNamed(g)).map(({ route, name }) => `${route} ${name}`)).toEqual([]);
  });

  it('the Errors tables give every code a problem can carry, the service\'s each with its status', () => {
    const cells = (text: string) => text.split('\n').filter((l) => /^\| (`|\d)/.test(l)).map((l) => l.slice(2).split(' | '));
    // The service's table (| code | status | when |), and the proxy's (| status | code | when |: `not_found` / `gone`).
    const service = cells(section('Errors', 3));
    const proxy = cells(section('The drop-in proxy for the official SDKs').split('### Errors')[1]!.split('\n#')[0]!);
    const named = new Set([...service.map((c) => c[0]!), ...proxy.map((c) => c[1]!)].flatMap((cell) => [...cell.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!)));
    expect(PROBLEM_CODES.filter((code) => !named.has(code))).toEqual([]);
    const codes = service.filter((c) => PROBLEM_CODES.includes(c[0]!.slice(1, -1) as ProblemCode));
    expect(codes.length).toBeGreaterThan(12);
    for (const [code, status] of codes) expect(Number(status), code).toBe(statusOf(code!.slice(1, -1) as ProblemCode));
  });

  it('Metrics and logs names every metric of the service, and no other', async () => {
    // The service's own (prom-client's default process and Node.js metrics are named as a family).
    const own = (await new Metrics(false).registry.getMetricsAsJSON()).map((m) => m.name).sort();
    const all = new Set((await new Metrics(true).registry.getMetricsAsJSON()).map((m) => m.name));
    const text = section('Metrics and logs');
    expect(own.length).toBeGreaterThan(10);
    expect(own.filter((name) => !text.includes(`\`${name}`))).toEqual([]);
    // Every other ph_ name is a metric, but for the dashboard's cookie.
    const named = [...new Set(README.match(/\bph_[a-z_]+\b/g))];
    expect(named.filter((name) => !all.has(name) && name !== COOKIE)).toEqual([]);
  });

  it("the command table lists what `prefix-handles --help` does, each command with its usage line's options", () => {
    const help = execFileSync(process.execPath, [new URL('bin/prefix-handles.mjs', ROOT).pathname, '--help'], { encoding: 'utf8' });
    const commands = [...help.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]!);
    expect(commands).toEqual(COMMANDS.map((c) => c.name));
    // Its command table (another table of the section, such as exit statuses, names no commands).
    const commandTable = table(section('Command line'), 'command').map((r) => r.first);
    // A cell names one or more commands: `tenants [list] [--json]` · `tenants create <name>`.
    const named = (cell: string) => [...cell.matchAll(/(?:^|· |, )`([a-z]+)/g)].map((m) => m[1]!);
    expect(new Set(commandTable.flatMap(named))).toEqual(new Set(commands));
    const options = (text: string) => [...new Set(text.match(/--[a-z-]+/g) ?? [])].sort();
    for (const command of COMMANDS) {
      const usage = command.help.split('\n\n')[0]!;
      const cells = commandTable.filter((cell) => named(cell).includes(command.name)).join(' ');
      expect(options(cells), `the README's row of ${command.name}`).toEqual(options(usage));
    }
  });

  it('Layout names every file and folder of src/ and every folder of test/', () => {
    // Its listing is a code block, which PROSE leaves out.
    const layout = README.slice(README.indexOf('\n## Layout\n'), README.indexOf('\n## Dependencies and why\n'));
    const src = readdirSync(new URL('src/', ROOT), { withFileTypes: true }).map((e) => `src/${e.name}${e.isDirectory() ? '/' : ''}`);
    expect(src.filter((entry) => !layout.includes(entry))).toEqual([]);
    // test/'s entry, with the lines it wraps onto.
    const tests = /^test\/( +.+(?:\n +.+)*)/m.exec(layout)![1]!;
    const folders = readdirSync(new URL('test/', ROOT), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${e.name}/`);
    expect(folders.length).toBeGreaterThan(5);
    expect(folders.filter((f) => !new RegExp(`[ ,]${f}`).test(tests))).toEqual([]);
  });

  it('every file and folder of the repository it names exists, and every npm script', () => {
    const scripts = Object.keys((JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { scripts: Record<string, string> }).scripts);
    const run = [...new Set([...README.matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1]!))];
    expect(run.length).toBeGreaterThan(3);
    expect(run.filter((r) => !scripts.includes(r))).toEqual([]);
    // Relative to the repository: not /usr/bin/chromium.
    const paths = [...new Set(README.match(/(?<![\w./~-])(?:src|test|bench|bin|migrations)\/[A-Za-z0-9_./*-]*[A-Za-z0-9_/*]/g) ?? [])];
    expect(paths.length).toBeGreaterThan(50);
    // A pattern (test/http/fuzz*.test.ts, test/http/fuzz*, test/*/fuzz*.test.ts) names at least one file.
    const exists = (p: string): boolean => {
      if (!p.includes('*')) return existsSync(new URL(p, ROOT));
      // The folder before the first * and the entries of it that match its segment, each with the rest of the path.
      const slash = p.lastIndexOf('/', p.indexOf('*'));
      const folder = p.slice(0, slash + 1);
      const [segment, ...rest] = p.slice(slash + 1).split('/');
      const name = new RegExp(`^${segment!.replace(/[.]/g, '\\.').replace(/\*/g, '[^/]*')}$`);
      if (!existsSync(new URL(folder, ROOT))) return false;
      return readdirSync(new URL(folder, ROOT)).some((f) => name.test(f) && exists([folder + f, ...rest].join('/')));
    };
    // bench/results/ and what is in it are written by a run (and not committed).
    expect(paths.filter((p) => !p.startsWith('bench/results/') && !exists(p))).toEqual([]);
  });

  it('Dependencies and why lists every package of package.json, a devDependency marked (dev), and no other', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as Record<string, Record<string, string>>;
    const listed = rows(section('Dependencies and why'))
      .slice(1)
      .flatMap((r) => r.first.split(', '))
      .map((name) => ({ name: name.replace(/ \(dev\)$/, ''), dev: name.endsWith(' (dev)') }));
    const expected = [...Object.keys(pkg.dependencies!).map((name) => ({ name, dev: false })), ...Object.keys(pkg.devDependencies!).map((name) => ({ name, dev: true }))];
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    expect(listed.sort(byName)).toEqual(expected.sort(byName));
  });
});
