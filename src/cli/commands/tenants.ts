import type { TenantListing } from '../../domain/tenants';
import { ADMIN_HELP, ADMIN_OPTIONS, openAdmin, printIssued } from '../admin';
import { UsageError, type Command } from '../command';
import { printable, table, when } from '../table';

export const tenants: Command = {
  name: 'tenants',
  summary: 'list tenants and their keys, or create a tenant (admin)',
  help: `Usage: prefix-handles tenants [list] [--json]
       prefix-handles tenants create <name> [--json]

list (the default): every tenant, oldest first, with a row per key: its id (what
'keys rotate' and 'keys revoke' take), its hint (the secret's first 12 characters),
when it was created and revoked. A key's secret is never stored, so never shown.

create: a tenant and its first API key. The key is printed this once: the service
keeps only its hash. Store it now. A name another tenant has is refused
(tenant_name_taken, naming it), compared ignoring case and extra whitespace: a
create retried after a timeout makes no second tenant. Tenants that share a name
(made by versions before names were unique) are named after the list.

${ADMIN_HELP}`,
  options: ADMIN_OPTIONS,
  positionals: [0, 2],
  async run({ values, positionals }) {
    const [verb = 'list', name] = positionals;
    if (verb === 'list') {
      if (name !== undefined) throw new UsageError(`unexpected argument '${name}'`);
      const admin = openAdmin(values);
      try {
        const listed = await admin.list();
        process.stdout.write(values.json ? `${JSON.stringify({ tenants: listed }, null, 2)}\n` : `${listText(listed)}\n`);
      } finally {
        admin.close();
      }
      return 0;
    }
    if (verb !== 'create') throw new UsageError(`unknown action '${verb}' (list, create)`);
    if (name === undefined) throw new UsageError('missing argument: prefix-handles tenants create <name>');
    // As the API's labels: a name for people, 1 to 200 characters.
    if (name.length < 1 || name.length > 200) throw new UsageError(`a tenant's name is 1 to 200 characters (got ${name.length})`);
    const admin = openAdmin(values);
    try {
      printIssued(values, await admin.createTenant(name), { name });
    } finally {
      admin.close();
    }
    return 0;
  },
};

function listText(listed: TenantListing[]): string {
  if (!listed.length) return 'no tenants';
  // A row per key, the tenant repeated on each: `| grep ten_…` finds them all.
  const rows = listed.flatMap((t) =>
    t.keys.length
      ? t.keys.map((k) => [t.id, t.name, k.id, k.hint, when(k.created_at), k.revoked_at === null ? 'active' : `revoked ${when(k.revoked_at)}`])
      : [[t.id, t.name, '-', '', '', 'no keys']],
  );
  const keys = listed.reduce((n, t) => n + t.keys.length, 0);
  const revoked = listed.reduce((n, t) => n + t.keys.filter((k) => k.revoked_at !== null).length, 0);
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  // Made before names were unique: each group once, under the name its oldest tenant has.
  const shared = listed.filter((t) => t.same_name_as.length > 0 && t.same_name_as.every((id) => listed.findIndex((o) => o.id === id) > listed.indexOf(t)));
  const groups = shared.map((t) => `${printable(t.name)}: ${[t.id, ...t.same_name_as].join(', ')}`);
  const note = groups.length ? `\n${plural(groups.length, 'name')} shared by several tenants (made before tenant names were unique; each works on its own keys): ${groups.join('; ')}` : '';
  return `${table(['tenant', 'name', 'key', 'hint', 'created', 'status'], rows)}\n\n${plural(listed.length, 'tenant')}, ${plural(keys, 'key')} (${revoked} revoked)${note}`;
}
