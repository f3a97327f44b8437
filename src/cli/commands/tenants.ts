import type { TenantDeletionProgress } from '../../domain/tenant-deletion';
import type { TenantListing } from '../../domain/tenants';
import { ADMIN_HELP, ADMIN_OPTIONS, openAdmin, printIssued } from '../admin';
import { UsageError, type Command, type Values } from '../command';
import { printable, table, when } from '../table';
import { canonicalZone } from '../../domain/time-zone';

export const tenants: Command = {
  name: 'tenants',
  summary: 'list, create, rename or delete tenants (admin)',
  help: `Usage: prefix-handles tenants [list] [--json]
       prefix-handles tenants create <name> [--time-zone ZONE] [--json]
       prefix-handles tenants rename <tenant-id> [<name>] [--time-zone ZONE] [--json]
       prefix-handles tenants delete <tenant-id> --confirm <name> [--json]

list (the default): every tenant, oldest first, with its time zone and a row per key: its id (what
'keys rotate' and 'keys revoke' take), its hint (the secret's first 12 characters),
when it was created and revoked. A key's secret is never stored, so never shown.

create: a tenant and its first API key. The key is printed this once: the service
keeps only its hash. Store it now. A name another tenant has is refused
(tenant_name_taken, naming it), compared ignoring case and extra whitespace: a
create retried after a timeout makes no second tenant. Tenants that share a name
(made by versions before names were unique) are named after the list.
--time-zone ZONE: the IANA time zone its days are counted in (reports, dashboard,
'report'), e.g. America/Los_Angeles; UTC when not given.

rename: a new name, under create's rules (its own name in another case is not
another tenant's), and/or with --time-zone a new zone: allowed only until the
tenant has a reconciled request (then time_zone_fixed: days counted in one zone
are not mixed with another's; create a new tenant instead). Its keys and data
stay as they are.

delete: the tenant and every row of its data (handles, requests, reports, keys),
for good. --confirm takes its name as listed (case and extra whitespace aside): a
wrong id is refused, not another team's history deleted. Its keys stop working at
once; the rest is deleted in short transactions, and a service stopped meanwhile
goes on at its next start.

${ADMIN_HELP}`,
  options: { ...ADMIN_OPTIONS, confirm: { type: 'string' }, 'time-zone': { type: 'string' } },
  positionals: [0, 3],
  async run({ values, positionals }) {
    const [verb = 'list', name] = positionals;
    if (verb === 'rename' || verb === 'delete') return change(verb, values, positionals.slice(1));
    if (values.confirm !== undefined) throw new UsageError('--confirm is for tenants delete');
    if (verb !== 'create' && values['time-zone'] !== undefined) throw new UsageError('--time-zone is for tenants create and tenants rename');
    if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
    if (verb === 'list') {
      if (name !== undefined) throw new UsageError(`unexpected argument '${name}'`);
      const admin = await openAdmin(values);
      try {
        const { tenants: listed, deleting } = await admin.listWithDeletions();
        process.stdout.write(values.json ? `${JSON.stringify({ tenants: listed, deleting }, null, 2)}\n` : `${listText(listed)}${deletingText(deleting, admin.offline)}\n`);
      } finally {
        admin.close();
      }
      return 0;
    }
    if (verb !== 'create') throw new UsageError(`unknown action '${verb}' (list, create, rename, delete)`);
    if (name === undefined) throw new UsageError('missing argument: prefix-handles tenants create <name>');
    // As the API's labels: a name for people, 1 to 200 characters.
    if (name.length < 1 || name.length > 200) throw new UsageError(`a tenant's name is 1 to 200 characters (got ${name.length})`);
    const admin = await openAdmin(values);
    try {
      const zone = values['time-zone'] as string | undefined;
      // The zone as the service stores it (`america/los_angeles` is America/Los_Angeles): the key's answer does not carry it.
      printIssued(values, await admin.createTenant(name, zone), { name, ...(zone === undefined ? {} : { time_zone: canonicalZone(zone) ?? zone }) });
    } finally {
      admin.close();
    }
    return 0;
  },
};

/** rename <id> <name>, delete <id> --confirm <name>. */
async function change(verb: 'rename' | 'delete', values: Values, args: string[]): Promise<number> {
  const [id, name] = args;
  if (verb === 'rename') {
    if (values.confirm !== undefined) throw new UsageError('--confirm is for tenants delete');
    if (id === undefined || (name === undefined && values['time-zone'] === undefined))
      throw new UsageError('missing argument: prefix-handles tenants rename <tenant-id> <name> (or --time-zone ZONE)');
    if (name !== undefined && (name.length < 1 || name.length > 200)) throw new UsageError(`a tenant's name is 1 to 200 characters (got ${name.length})`);
  } else {
    if (values['time-zone'] !== undefined) throw new UsageError('--time-zone is for tenants create and tenants rename');
    if (name !== undefined) throw new UsageError(`unexpected argument '${name}' (the name goes after --confirm)`);
    if (id === undefined) throw new UsageError('missing argument: prefix-handles tenants delete <tenant-id> --confirm <name>');
    if (typeof values.confirm !== 'string' || values.confirm === '')
      throw new UsageError(`tenants delete deletes ${id} and all its data for good: give its name, --confirm <name> (as 'prefix-handles tenants' lists it)`);
  }
  const admin = await openAdmin(values);
  try {
    if (verb === 'rename') {
      const zone = values['time-zone'] as string | undefined;
      const renamed = await admin.renameTenant(id, { ...(name === undefined ? {} : { name }), ...(zone === undefined ? {} : { time_zone: zone }) });
      const what = [name === undefined ? undefined : printable(renamed.name), zone === undefined ? undefined : `time zone ${renamed.time_zone}`].filter((s) => s !== undefined);
      process.stdout.write(values.json ? `${JSON.stringify(renamed, null, 2)}\n` : `${name === undefined ? 'changed' : 'renamed'} ${renamed.id}: ${what.join(', ')}\n`);
    } else {
      const deleted = await admin.deleteTenant(id, values.confirm as string);
      const named = deleted.name === null ? '' : ` (${printable(deleted.name)})`;
      process.stdout.write(values.json ? `${JSON.stringify(deleted, null, 2)}\n` : `deleted ${deleted.id}${named}: ${plural(deleted.rows, 'row')}, in ${plural(deleted.batches, 'transaction')}\n`);
    }
  } finally {
    admin.close();
  }
  return 0;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** Deletions not finished, after the table: one line each, with what is left; `offline`: listed from the file, taken up so too. */
function deletingText(deleting: TenantDeletionProgress[], offline: boolean): string {
  return deleting
    .map((d) => {
      const left = `${plural(d.requests_left, 'request')} and ${plural(d.handles_left, 'handle')} left`;
      return d.running
        ? `\nbeing deleted: ${d.id}${d.name === null ? '' : ` (${printable(d.name)})`}, ${left}`
        : `\ndeletion cut short: ${d.id}, ${left}; the service takes it up at its next start (or: prefix-handles tenants delete ${d.id} --confirm -${offline ? ' --offline' : ''})`;
    })
    .join('');
}

function listText(listed: TenantListing[]): string {
  if (!listed.length) return 'no tenants';
  // A row per key, the tenant repeated on each: `| grep ten_…` finds them all.
  const rows = listed.flatMap((t) =>
    t.keys.length
      ? t.keys.map((k) => [t.id, t.name, t.time_zone, k.id, k.hint, when(k.created_at), k.revoked_at === null ? 'active' : `revoked ${when(k.revoked_at)}`])
      : [[t.id, t.name, t.time_zone, '-', '', '', 'no keys']],
  );
  const keys = listed.reduce((n, t) => n + t.keys.length, 0);
  const revoked = listed.reduce((n, t) => n + t.keys.filter((k) => k.revoked_at !== null).length, 0);
  // Made before names were unique: each group once, under the name its oldest tenant has.
  const shared = listed.filter((t) => t.same_name_as.length > 0 && t.same_name_as.every((id) => listed.findIndex((o) => o.id === id) > listed.indexOf(t)));
  const groups = shared.map((t) => `${printable(t.name)}: ${[t.id, ...t.same_name_as].join(', ')}`);
  const note = groups.length ? `\n${plural(groups.length, 'name')} shared by several tenants (made before tenant names were unique; each works on its own keys): ${groups.join('; ')}` : '';
  return `${table(['tenant', 'name', 'time zone', 'key', 'hint', 'created', 'status'], rows)}\n\n${plural(listed.length, 'tenant')}, ${plural(keys, 'key')} (${revoked} revoked)${note}`;
}
