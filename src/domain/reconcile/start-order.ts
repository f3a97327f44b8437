/**
 * The proxy's calls of one cache scope, reconciled in the order they started
 * rather than the order they finished.
 *
 * The simulated cache advances in start order. Say call A started first and
 * wrote the prefix, and call B started later, read A's write and finished
 * before A. Reconciled as they finished, B would find no write before it (its
 * real read counted as `bonus`), and A would be placed after B (its write
 * counted as `unconfirmed`). The proxy sees every call begin, so a finished
 * call waits until every call of its scope that began before it has settled.
 *
 * The wait is bounded by `maxWaitMs`: one long stream must not hold a scope's
 * reports back for long. Past that, the waiting calls go in as they finished,
 * and the late one is placed at the scope's latest start, as a late report is.
 */
export class StartOrder {
  /** Per scope, its unsettled calls in the order they began. */
  private readonly scopes = new Map<string, Call[]>();

  constructor(private readonly maxWaitMs: number) {}

  /**
   * A call of `scope` begins now (calls begin in the order they start). Returns
   * its `settle`: the call's reconciliation, run once every call of the scope
   * that began before it has settled. A call with nothing to reconcile (it
   * failed upstream) settles with a no-op, so the calls after it can go in.
   */
  begin(scope: string): (reconcile: () => void) => void {
    const call: Call = { reconcile: null, timer: null };
    let calls = this.scopes.get(scope);
    if (!calls) this.scopes.set(scope, (calls = []));
    calls.push(call);
    return (reconcile) => {
      if (call.reconcile) return;
      call.reconcile = reconcile;
      this.drain(scope);
      if (this.scopes.get(scope)?.includes(call)) {
        call.timer = setTimeout(() => this.release(scope, call), this.maxWaitMs);
        // A waiting reconciliation never keeps the process alive.
        call.timer.unref();
      }
    };
  }

  /** Calls waiting for an earlier call of any scope (the metrics and tests read it). */
  get waiting(): number {
    let n = 0;
    for (const calls of this.scopes.values()) n += calls.filter((c) => c.reconcile).length;
    return n;
  }

  /** Runs the settled calls at the head of the scope, in start order. */
  private drain(scope: string): void {
    const calls = this.scopes.get(scope);
    if (!calls) return;
    while (calls[0]?.reconcile) run(calls.shift()!);
    if (calls.length === 0) this.scopes.delete(scope);
  }

  /** `call` waited too long: it and every settled call before it go in now, in start order. */
  private release(scope: string, call: Call): void {
    const calls = this.scopes.get(scope);
    const at = calls?.indexOf(call) ?? -1;
    if (!calls || at < 0) return;
    const unsettled = calls.slice(0, at + 1).filter((c) => !c.reconcile);
    for (const c of calls.slice(0, at + 1)) if (c.reconcile) run(c);
    calls.splice(0, at + 1, ...unsettled);
    this.drain(scope);
  }
}

interface Call {
  reconcile: (() => void) | null;
  timer: NodeJS.Timeout | null;
}

function run(call: Call): void {
  if (call.timer) clearTimeout(call.timer);
  try {
    call.reconcile!();
  } catch {
    // A reconciliation reports its own failures; the calls after it still go in.
  }
}
