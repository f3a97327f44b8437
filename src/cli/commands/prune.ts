import { ADMIN_HELP, ADMIN_OPTIONS, openAdmin } from '../admin';
import { when } from '../table';
import { UsageError, type Command } from '../command';

export const prune: Command = {
  name: 'prune',
  summary: 'delete requests older than N days with their detail; reports keep their figures (admin)',
  help: `Usage: prefix-handles prune --older-than <N>d [--json]

Deletes the requests rendered more than N days ago (N at least 1), with their
reconciliation, summary, inline texts and index by handle, in transactions of at
most 1,000 requests, and prints how many went and how many were kept. Reports read
rollups, which stay: their figures do not change. Kept though old enough: requests
reconciled after their cache scope's latest snapshot (a start replays them), and
those started within the catalog's longest cache TTL of their scope's latest call;
nothing started within twice that TTL of now. GET /v1/requests/{id} of a pruned
request answers 404 request_pruned. The service prunes by itself with
PH_REQUEST_RETENTION_DAYS. The file does not shrink: SQLite reuses the freed pages
(VACUUM, with the service stopped, returns them to the file system).

${ADMIN_HELP}
  --older-than Nd   the age, in days (required)`,
  options: { ...ADMIN_OPTIONS, 'older-than': { type: 'string' } },
  positionals: [0, 0],
  async run({ values }) {
    const age = values['older-than'] as string | undefined;
    if (age === undefined) throw new UsageError('missing option --older-than <N>d (e.g. --older-than 30d)');
    const m = /^([0-9]+)d$/.exec(age);
    const days = m ? Number(m[1]) : NaN;
    if (!(days >= 1 && days <= 36_500)) throw new UsageError(`--older-than takes a number of days from 1 to 36500, written as 30d (got '${age}')`);
    const admin = openAdmin(values);
    try {
      const r = await admin.prune(days);
      process.stdout.write(
        values.json
          ? `${JSON.stringify(r, null, 2)}\n`
          : `pruned ${r.pruned} request${r.pruned === 1 ? '' : 's'} rendered before ${when(r.before)}, in ${r.batches} batch${r.batches === 1 ? '' : 'es'}\n` +
              (r.kept ? `kept ${r.kept} old enough but still needed (reconciled after their scope's snapshot, or within a cache TTL of its latest call)\n` : ''),
      );
    } finally {
      admin.close();
    }
    return 0;
  },
};
