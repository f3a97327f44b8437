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
 * reports back for long. Past that, the waiting call and those before it go in,
 * and the unfinished calls it waited for no longer hold anyone: each goes in
 * when it ends, placed at the scope's latest start, as a late report is.
 */
export class StartOrder {
  /** Per scope, its unsettled calls in the order they began. */
  private readonly scopes = new Map<string, Call[]>();
  /** Calls begun whose reconciliation has not run yet (waiting in a scope, or released and not yet settled). */
  private unreconciled = 0;
  /** Set by releaseAll: from then on no call waits for another. */
  private draining = false;

  constructor(private readonly maxWaitMs: number) {}

  /**
   * A call of `scope` begins now (calls begin in the order they start). Returns
   * its `settle`: the call's reconciliation, run once every call of the scope
   * that began before it has settled. A call with nothing to reconcile (it
   * failed upstream) settles with a no-op, so the calls after it can go in.
   */
  begin(scope: string): (reconcile: () => void) => void {
    // Once draining (a shutdown), a call waits for nobody: it goes in as soon as it settles.
    const call: Call = { reconcile: null, timer: null, released: this.draining, done: () => this.unreconciled-- };
    this.unreconciled++;
    if (!this.draining) {
      let calls = this.scopes.get(scope);
      if (!calls) this.scopes.set(scope, (calls = []));
      calls.push(call);
    }
    return (reconcile) => {
      if (call.reconcile) return;
      call.reconcile = reconcile;
      // Waited for too long already: it holds nobody, and waits for nobody.
      if (call.released) return run(call);
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

  /** Calls begun whose reconciliation has not run yet: a shutdown waits for none to be left. */
  get pending(): number {
    return this.unreconciled;
  }

  /**
   * Shutdown: every settled call goes in now, in start order within its scope, and every unsettled one (and any
   * begun later) goes in as soon as it settles, waiting for nobody.
   */
  releaseAll(): void {
    this.draining = true;
    for (const [scope, calls] of [...this.scopes]) {
      this.scopes.delete(scope);
      for (const c of calls) {
        if (c.reconcile) run(c);
        else c.released = true;
      }
    }
  }

  /** Runs the settled calls at the head of the scope, in start order. */
  private drain(scope: string): void {
    const calls = this.scopes.get(scope);
    if (!calls) return;
    while (calls[0]?.reconcile) run(calls.shift()!);
    if (calls.length === 0) this.scopes.delete(scope);
  }

  /**
   * `call` waited too long: it and every settled call before it go in now, in start order; the unsettled ones
   * before it leave the queue (each goes in when it ends), so no later call waits for them again.
   */
  private release(scope: string, call: Call): void {
    const calls = this.scopes.get(scope);
    const at = calls?.indexOf(call) ?? -1;
    if (!calls || at < 0) return;
    for (const c of calls.splice(0, at + 1)) {
      if (c.reconcile) run(c);
      else c.released = true;
    }
    this.drain(scope);
  }
}

interface Call {
  reconcile: (() => void) | null;
  timer: NodeJS.Timeout | null;
  /** Left the queue unsettled (a later call waited too long for it). */
  released: boolean;
  /** Counts the call out of `pending`. */
  done: () => void;
}

function run(call: Call): void {
  if (call.timer) clearTimeout(call.timer);
  call.done();
  try {
    call.reconcile!();
  } catch {
    // A reconciliation reports its own failures; the calls after it still go in.
  }
}
