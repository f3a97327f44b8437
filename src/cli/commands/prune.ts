import type { PruneAnswer } from '../../domain/retention';
import { ADMIN_HELP, ADMIN_OPTIONS, openAdmin } from '../admin';
import { when } from '../table';
import { UsageError, type Command } from '../command';

export const prune: Command = {
  name: 'prune',
  summary: 'delete requests older than N days with their detail; reports keep their figures (admin)',
  help: `Usage: prefix-handles prune --older-than <N>d [--json]

Deletes the requests rendered more than N days ago (N at least 1), with their
reconciliation, summary, inline texts and index by handle, in transactions of at
most 1,000 requests, and prints how many went, then what was kept and why. Reports
read rollups, which stay: their figures do not change. Kept though old enough:
requests reconciled after their cache scope's latest snapshot (a start replays
them), and those started within the catalog's longest cache TTL of their scope's
latest call; nothing rendered within twice that TTL of now (48 h), whatever N is. GET /v1/requests/{id} of a pruned
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
    const admin = await openAdmin(values);
    try {
      const r = await admin.prune(days);
      process.stdout.write(
        values.json
          ? `${JSON.stringify(r, null, 2)}\n`
          : `pruned ${r.pruned} request${r.pruned === 1 ? '' : 's'} rendered before ${when(r.before)}, in ${r.batches} batch${r.batches === 1 ? '' : 'es'}\n${[keptLine(r, days)].filter((l) => l !== '').map((l) => `${l}\n`).join('')}`,
      );
    } finally {
      admin.close();
    }
    return 0;
  },
};

/**
 * What was kept and why, in one line with its figures: the requests younger than the floor (which an age under it
 * reaches into: `--older-than 1d` kept a day more than asked, without a word), and each reason an older one stays.
 */
export function keptLine(r: OlderPruneAnswer, days: number): string {
  // An older service answers without the reasons and the floor: its one line, as it was ("NaN min" else).
  if (!isCurrent(r)) return r.kept ? `kept ${r.kept} old enough but still needed (reconciled after their scope's snapshot, or within a cache TTL of its latest call)` : '';
  const ttl = duration(r.floor_hours / 2);
  const floor = duration(r.floor_hours);
  const why = [
    r.kept_for_replay ? `${r.kept_for_replay} reconciled after their scope's latest snapshot (a start replays them)` : '',
    r.kept_for_drift ? `${r.kept_for_drift} started within ${ttl} of their scope's latest call (a drift is located against them)` : '',
    r.kept_started_late ? `${r.kept_started_late} whose call started after ${when(r.before)}` : '',
  ].filter((s) => s !== '');
  const still = `still needed: ${why.join(', ')}`;
  const reason = `twice the catalog's longest cache TTL, ${ttl}: a late report, or a write whose premium may still be read, must find its request`;
  if (days * 24 < r.floor_hours)
    return `kept every request rendered after ${when(r.before)}: nothing younger than ${floor} is pruned, whatever --older-than says (${reason}); ${r.kept ? `and ${r.kept} older, ${still}` : 'and no older one'}`;
  const older = `older than ${days} day${days === 1 ? '' : 's'}`;
  return `${r.kept ? `kept ${r.kept} request${r.kept === 1 ? '' : 's'} ${older}, ${still}` : `kept no request ${older}`}; nothing younger than ${floor} is ever pruned (${reason})`;
}

/** A prune's answer as a service before the reasons (kept_for_*, floor_hours) gives it too. */
type OlderPruneAnswer = Pick<PruneAnswer, 'before' | 'pruned' | 'kept' | 'batches'> & Partial<PruneAnswer>;
const isCurrent = (r: OlderPruneAnswer): r is PruneAnswer => typeof r.floor_hours === 'number';

/** Hours as the catalog's TTLs come: whole hours, else minutes. */
function duration(hours: number): string {
  return Number.isInteger(hours) ? `${hours} h` : `${Math.round(hours * 60)} min`;
}
