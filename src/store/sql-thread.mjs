// The writer thread: its own connection to the database file, applying the
// write queue's batches one at a time, each in one transaction, and answering
// only after the commit. Plain JavaScript so it loads without a TypeScript
// loader; the SQL comes from sqlite-store.ts.
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { runBatch } from './sql-batch.mjs';

const db = new Database(workerData.path);
for (const pragma of workerData.pragmas) db.pragma(pragma);
const prepared = new Map();

parentPort.on('message', ({ id, batch }) => {
  try {
    runBatch(db, prepared, batch);
    parentPort.postMessage({ id, ok: true });
  } catch (e) {
    parentPort.postMessage({ id, ok: false, message: e instanceof Error ? e.message : String(e) });
  }
});
