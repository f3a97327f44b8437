// Plain JavaScript on purpose: the writer thread (sql-thread.mjs) loads this
// without a TypeScript loader. Types are in sql-batch.d.mts.

/**
 * Runs a batch of [sql, params] statements in one IMMEDIATE transaction: all
 * of them or none. Statements are prepared once per connection and reused.
 */
export function runBatch(db, prepared, batch) {
  db.transaction(() => {
    for (const [sql, params] of batch) {
      let statement = prepared.get(sql);
      if (!statement) prepared.set(sql, (statement = db.prepare(sql)));
      statement.run(params);
    }
  }).immediate();
}
