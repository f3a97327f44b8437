// The CLI's start-up: every command imports src/cli/main.ts and, through commands/index.ts, each command's module.
// What only some commands need — the database (better-sqlite3, drizzle), the configuration and zod — is imported
// when one of them runs (backup, --offline, a time to check), not by `--help` or an API command: about 0.3–0.5 s of
// a start-up of about 1 s. Checked on the static import graph (not timed): no `import` that is not `import type`
// reaches those packages from main.ts.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '../..');

/** The packages a module reaches through static value imports, each with the chain of files that reaches it. */
function reachedPackages(entry: string): Map<string, string[]> {
  const packages = new Map<string, string[]>();
  const seen = new Set<string>();
  const walk = (file: string, chain: string[]) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/^import\s+(?!type\b)(?:[^;]*?\s+from\s+)?'([^']+)'/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) {
        if (!packages.has(spec)) packages.set(spec, [...chain, file]);
        continue;
      }
      const base = normalize(join(dirname(file), spec));
      // A file: './x' is x.ts or x.js's x.ts, and a folder ('./providers') its index.ts.
      const found = [`${base}.ts`, base.replace(/\.js$/, '.ts'), join(base, 'index.ts')].find((f) => statSync(join(ROOT, f), { throwIfNoEntry: false })?.isFile());
      if (!found) throw new Error(`${file}: cannot resolve ${spec}`);
      walk(found, [...chain, file]);
    }
  };
  walk(entry, []);
  return packages;
}

describe('the CLI imports lazily', () => {
  it('main.ts reaches neither the database, nor zod, nor the configuration by a static import', () => {
    const reached = reachedPackages('src/cli/main.ts');
    for (const heavy of ['better-sqlite3', 'drizzle-orm', 'zod', 'hono', '@hono/node-server']) {
      const by = [...reached].filter(([spec]) => spec === heavy || spec.startsWith(`${heavy}/`));
      expect(by.map(([spec, chain]) => `${spec} ← ${chain.join(' ← ')}`)).toEqual([]);
    }
    // The walk itself works: what is reached is found (a broken walk would pass the check above for nothing).
    expect([...reached.keys()]).toContain('nanoid');
  });

  it('the commands that need them import them when they run', () => {
    expect(reachedPackages('src/cli/offline.ts').has('better-sqlite3')).toBe(true);
    for (const [file, spec] of [['src/cli/admin.ts', './offline'], ['src/cli/commands/backup.ts', '../../store/db'], ['src/cli/iso.ts', 'zod']] as const)
      expect(readFileSync(join(ROOT, file), 'utf8')).toContain(`import('${spec}')`);
  });
});
