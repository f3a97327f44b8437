import { serve } from '@hono/node-server';
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { createApp, createServices } from './app';
import { bootstrapDefaultKey, timeZoneUnused } from './bootstrap';
import { ConfigError, loadConfig } from './config';
import { systemClock } from './domain/clock';
import { loadCatalog, ModelCatalog, CatalogError } from './domain/catalog/catalog';
import { startSimulator, type RunningSimulator } from './simulator/server';
import { DatabaseInUseError, NewerSchemaError, openDb, openLocked } from './store/db';
import { SqliteStore } from './store/sqlite-store';
import { answerClientError } from './http/client-error';
import { serviceLog } from './log';
import { exportSettings, exportTarget, shownUrl } from './otlp';

/** Thrown when the data directory or the database file cannot be used: said in one line, like a bad setting. */
class StorageError extends Error {}
/** Thrown when the built-in simulator cannot listen on PH_SIMULATOR_PORT: one line too. */
class SimulatorListenError extends Error {}

// Errors that name a file the operator chose (a data dir under a file, a file that is not a database, no
// permission), not bugs: fs errors carry a syscall, SQLite's own open errors these codes.
const STORAGE_CODES = /^SQLITE_(CANTOPEN|NOTADB|READONLY|PERM|CORRUPT|IOERR|FULL|AUTH)/;
function openStorage(path: string) {
  try {
    if (path === ':memory:') return openDb(path);
    mkdirSync(dirname(path), { recursive: true });
    // Locked before migrating: a second process must not change the schema under the one serving the file.
    return openLocked(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e && (typeof e.syscall === 'string' || (typeof e.code === 'string' && STORAGE_CODES.test(e.code)))) {
      throw new StorageError(`cannot open the database ${path}: ${e.message} (set by PH_DATABASE or PH_DATA_DIR, or serve's --data-dir)`);
    }
    throw err;
  }
}

async function main() {
  let config = loadConfig();
  const log = serviceLog(config.log);
  const opened = openStorage(config.databasePath);
  const catalog = new ModelCatalog(loadCatalog(config.catalogFile));
  let simulator: RunningSimulator | undefined;
  if (config.upstream === 'simulator') {
    // Try everything without a provider account: the proxy's upstream is the built-in simulator.
    simulator = await startSimulator({ catalog, ...config.simulator }).catch((err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is in use' : err.message;
      throw new SimulatorListenError(`cannot listen on 127.0.0.1:${config.simulator.port} for the provider simulator: ${why} (set by PH_SIMULATOR_PORT; 0: any free port)`);
    });
    config = { ...config, anthropicBaseUrl: simulator.url, openaiBaseUrl: simulator.url, geminiBaseUrl: simulator.url };
    log.info(`the proxy calls the provider simulator at ${simulator.url} (PH_UPSTREAM=simulator)`, { simulator: simulator.url });
  }
  const deps = { config, store: new SqliteStore(opened.db, opened.walSync, systemClock), clock: systemClock, catalog };
  const services = createServices(deps);
  const app = createApp(deps, services);

  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
    // Once listening: a start that cannot listen leaves no tenant or key file behind.
    const keyPath = join(config.dataDir, 'api-key');
    let made: ReturnType<typeof bootstrapDefaultKey>;
    try {
      made = bootstrapDefaultKey(services.tenants, keyPath, config.adminKey, config.timeZone);
    } catch (err) {
      // A data directory the database is not in (PH_DATABASE elsewhere) that cannot take the key file: one line, as a bad setting.
      console.error(`cannot write the API key file ${keyPath}: ${(err as Error).message} (the data directory is set by PH_DATA_DIR, or serve's --data-dir)`);
      server.close();
      opened.close();
      process.exit(2);
    }
    // With their ids: rotating or revoking the key takes its id, which the file does not hold.
    if (made) log.info(`created a default tenant (${made.tenant}); its API key (${made.key}) is in ${made.file}`, { tenant: made.tenant, key: made.key, file: made.file });
    // Set on a later start (an upgrade's, to move a team's days), the variable would change nothing without a word.
    const unusedZone = process.env.PH_TIME_ZONE?.trim() ? timeZoneUnused(services.tenants, config.timeZone, made !== null) : undefined;
    if (unusedZone) log.error(unusedZone, { time_zone: config.timeZone });
    services.retention.start();
    // A tenant's deletion a stop cut short goes on: its keys went first, so nothing of it is served meanwhile.
    services.deletion.resume().then(
      (done) => {
        for (const r of done) log.info(`deleted tenant ${r.id}, resumed: ${r.rows} more rows`, { tenant: r.id, rows: r.rows, batches: r.batches });
      },
      (err: unknown) => log.error(`resuming a tenant's deletion failed: ${(err as Error).message}`, { error: (err instanceof Error ? err.stack : undefined) ?? String(err) }),
    );
    const url = `http://${config.host}:${info.port}`;
    log.info(`prefix-handles listening on ${url} (database ${config.databasePath}; docs at /docs)`, { url, database: config.databasePath });
    // The variables that set it: the traces' own where set (they win), so the line names the one to change.
    const setBy = (v: string) => (process.env[`OTEL_EXPORTER_OTLP_TRACES_${v}`]?.trim() ? `OTEL_EXPORTER_OTLP_TRACES_${v}` : `OTEL_EXPORTER_OTLP_${v}`);
    if (config.otlp) log.info(`each reconciled request is sent as a span to ${exportTarget(config.otlp)}; ${setBy('ENDPOINT')}, ${setBy('PROTOCOL')}; ${exportSettings(config.otlp)}`, { otlp: shownUrl(config.otlp.url), protocol: config.otlp.protocol });
  });
  // A port in use or an address this machine does not have: said in one line, like a bad setting.
  const cannotListen = (err: NodeJS.ErrnoException) => {
    console.error(`cannot listen on ${config.host}:${config.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message} (set by PORT and HOST, or serve's --port and --host)`);
    opened.close();
    process.exit(2);
  };
  server.on('clientError', answerClientError);
  // Only while starting: a later server error is not a listening problem.
  server.once('error', cannotListen);
  server.once('listening', () => server.off('error', cannotListen));

  let closing = false;
  const shutdown = (signal: string) => {
    // Ctrl-C reaches a `prefix-handles serve` child twice: from the terminal and from its parent.
    if (closing) return;
    closing = true;
    const { shutdownDelayMs: delay, shutdownGraceMs: grace } = config;
    // Readiness fails first, so a load balancer stops sending here while requests are still served.
    services.draining.abort();
    // A keep-alive client would go on sending on its connection (through a Kubernetes Service, connections stay on
    // their pod): each answer now closes it, and the client's next connection goes to a pod still ready.
    server.on('request', (_req: IncomingMessage, res: ServerResponse) => res.setHeader('connection', 'close'));
    if (delay > 0) {
      log.info(`stopping (${signal}): /readyz answers 503 draining; requests are served ${delay} ms more before the listener closes (PH_SHUTDOWN_DELAY_MS)`, { signal, delayMs: delay });
      setTimeout(() => closeListener(signal), delay);
    } else closeListener(signal);
    // However the rest goes, the process ends. (Capped at the longest delay a timer holds: Node fires a longer one at
    // once, and a grace near the configuration's maximum then exited 1 on every stop, its writes uncommitted.)
    const giveUp = Math.min(delay + grace + 10_000, 2_147_483_647);
    setTimeout(() => {
      log.error(`stopping: not done ${giveUp} ms after ${signal}; exiting with writes possibly unsynced`, { signal, afterMs: giveUp });
      process.exit(1);
    }, giveUp).unref();
  };
  const closeListener = (signal: string) => {
    const grace = config.shutdownGraceMs;
    log.info(`stopping (${signal}): no new connections; requests under way have ${grace} ms to finish (PH_SHUTDOWN_GRACE_MS)`, { signal, graceMs: grace });
    // Listening stops and idle connections close; a request under way (a streamed answer too) finishes first.
    server.close(() => void stopped());
    // The dashboard's live events never end by themselves: they end now.
    services.stopping.abort();
    services.retention.stop();
    services.deletion.stop();
    // Past the grace, what is still answering is cut: the proxy records each cut call as interrupted
    // (reconciled with unknown capture), as when its client leaves.
    cut = setTimeout(() => {
      log.info('stopping: cutting the requests still under way');
      (server as Partial<Server>).closeAllConnections?.();
    }, grace);
  };
  let cut: NodeJS.Timeout | undefined;
  const stopped = async () => {
    clearTimeout(cut);
    // Every connection is closed: each proxied call has ended or been cut. Their reconciliations run a moment
    // later (after the answer, in their scope's start order): nobody waits for an earlier call now.
    services.proxyOrder.releaseAll();
    while (services.proxyOrder.pending > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    // Whatever is queued for the group commit is committed, and synced before the database closes.
    services.writes.flushNow();
    await services.writes.idle();
    await deps.store.durable().catch(() => undefined);
    // The spans of the last reconciliations go out: a collector that does not answer holds the stop no longer than its export timeout.
    await services.traces?.shutdown().catch(() => undefined);
    await simulator?.close();
    opened.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // A closed terminal: the queued writes are committed and synced as on any other stop.
  process.on('SIGHUP', () => shutdown('SIGHUP'));
  // Started by `prefix-handles serve` (bin/): its IPC channel closes when that process is gone, however it died.
  process.once('disconnect', () => shutdown('the parent process is gone'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof CatalogError || err instanceof StorageError || err instanceof SimulatorListenError || err instanceof NewerSchemaError || err instanceof DatabaseInUseError) {
    // A catalog error names the file and what is wrong with it; the setting that named the file is said here.
    console.error(err instanceof CatalogError && process.env.PH_CATALOG_FILE ? `${err.message}\n  (set by PH_CATALOG_FILE)` : err.message);
    process.exit(2);
  }
  throw err;
});
