import type { Database, Statement } from 'better-sqlite3';

/** One statement and its named parameters. */
export type SqlStatement = readonly [sql: string, params: Record<string, unknown>];

export function runBatch(db: Database, prepared: Map<string, Statement>, batch: readonly SqlStatement[]): void;
