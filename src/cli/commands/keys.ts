import { ADMIN_HELP, ADMIN_OPTIONS, followKeyFile, openAdmin, printIssued } from '../admin';
import { when } from '../table';
import { CliError, UsageError, type Command } from '../command';

const ACTIONS = ['issue', 'rotate', 'revoke'];

export const keys: Command = {
  name: 'keys',
  summary: "issue, rotate or revoke a tenant's API key (admin)",
  help: `Usage: prefix-handles keys issue <tenant-id> [--json]
       prefix-handles keys rotate <key-id> [--json]
       prefix-handles keys revoke <key-id> [--json]

issue    another API key for the tenant (its other keys stay valid)
rotate   a new key for the key's tenant, and the old key revoked: one transaction,
         both or neither. Clients holding the old key get 401, told it was revoked
revoke   the key stops working at once; revoking a revoked key changes nothing
The ids are those 'prefix-handles tenants' lists. A new key is printed this once:
the service keeps only its hash. Store it now.

${ADMIN_HELP}`,
  options: ADMIN_OPTIONS,
  positionals: [0, 2],
  async run({ values, positionals }) {
    const [action, id] = positionals;
    if (action === undefined) throw new UsageError(`missing argument: prefix-handles keys ${ACTIONS.join('|')} <id>`);
    if (!ACTIONS.includes(action)) throw new UsageError(`unknown action '${action}' (${ACTIONS.join(', ')})`);
    if (id === undefined) throw new UsageError(`missing argument: prefix-handles keys ${action} <${action === 'issue' ? 'tenant-id' : 'key-id'}>`);
    const admin = await openAdmin(values);
    try {
      if (action === 'issue') printIssued(values, await admin.issueKey(id));
      if (action === 'rotate') {
        const issued = await admin.rotateKey(id);
        printIssued(values, issued, { replaces: id });
        const old = (await admin.list()).flatMap((t) => t.keys).find((k) => k.id === id);
        if (old) followKeyFile(admin.keyFile, old.hint, issued);
      }
      if (action === 'revoke') {
        await admin.revokeKey(id);
        // Read back: the moment it was revoked, which is earlier than now when it already was.
        const owner = (await admin.list()).find((t) => t.keys.some((k) => k.id === id));
        const key = owner?.keys.find((k) => k.id === id);
        if (!owner || !key?.revoked_at) throw new CliError(`revoke: ${id} is not listed as revoked afterwards`);
        process.stdout.write(values.json ? `${JSON.stringify({ tenant: owner.id, ...key }, null, 2)}\n` : `revoked ${id} (tenant ${owner.id}, hint ${key.hint}) on ${when(key.revoked_at)}\n`);
        followKeyFile(admin.keyFile, key.hint);
      }
    } finally {
      admin.close();
    }
    return 0;
  },
};
