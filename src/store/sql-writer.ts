import type { Database, Statement } from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import { runBatch, type SqlStatement } from './sql-batch.mjs';

export type { SqlStatement };

/** Applies a batch of statements in one transaction; resolves once it has committed. */
export interface SqlWriter {
  run(batch: readonly SqlStatement[]): Promise<void>;
  /** Stops the writer after the batches already sent. */
  close(): Promise<void>;
}

/** On the caller's own connection: for an in-memory database, which no other connection can open. */
export class InlineWriter implements SqlWriter {
  private readonly prepared = new Map<string, Statement>();

  constructor(private readonly db: Database) {}

  run(batch: readonly SqlStatement[]): Promise<void> {
    try {
      runBatch(this.db, this.prepared, batch);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * On a thread of its own, with its own connection to the file: the commit
 * (page writes, fsync, checkpoints) never blocks the event loop, and requests
 * keep being served while it runs. The thread is referenced only while a batch
 * is out, so an idle writer never keeps the process alive.
 */
export class ThreadWriter implements SqlWriter {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  constructor(
    private readonly path: string,
    private readonly pragmas: readonly string[],
  ) {}

  run(batch: readonly SqlStatement[]): Promise<void> {
    const worker = this.worker ?? this.start();
    const id = ++this.nextId;
    if (this.waiting.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, batch });
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    // Messages are handled in order: once this empty batch is answered, so are all sent before it.
    if (this.waiting.size > 0) await this.run([]).catch(() => undefined);
    this.worker = undefined;
    await worker.terminate();
  }

  private start(): Worker {
    const worker = new Worker(new URL('./sql-thread.mjs', import.meta.url), { workerData: { path: this.path, pragmas: this.pragmas } });
    worker.on('message', (m: { id: number; ok: boolean; message?: string }) => {
      const waiter = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      if (m.ok) waiter?.resolve();
      else waiter?.reject(new Error(m.message));
    });
    // A thread that dies fails what it held; the next batch starts a new one.
    const fail = (e: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the database writer thread exited (${code})`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }
}
