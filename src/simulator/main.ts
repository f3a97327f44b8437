// `npm run simulator`: the provider simulator as a process, for demos and for
// trying the proxy without a provider account.
//   PORT (default 8788), HOST (default 127.0.0.1), PH_CATALOG_FILE (optional catalog override),
//   PH_SIMULATOR_FIRST_BYTE_MS, PH_SIMULATOR_CHUNK_DELAY_MS (its pace, 0 by default)

import { CatalogError, loadCatalog, ModelCatalog } from '../domain/catalog/catalog';
import { startSimulator } from './server';

async function main(): Promise<void> {
  // Digits only: Number() reads an empty PORT as 0 (any port) and `0x10` as 16.
  const port = /^[0-9]{1,5}$/.test(process.env.PORT ?? '8788') ? Number(process.env.PORT ?? 8788) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT must be an integer between 0 and 65535, got "${process.env.PORT}"`);
    process.exit(2);
  }
  const host = process.env.HOST || '127.0.0.1';
  const catalog = new ModelCatalog(loadCatalog(process.env.PH_CATALOG_FILE || undefined));

  // Its pace, to try overlapping calls: time to first byte, and between streamed events (ms; 0 by default).
  const pace: Record<string, number> = {};
  for (const [name, key] of [['PH_SIMULATOR_FIRST_BYTE_MS', 'firstByteDelayMs'], ['PH_SIMULATOR_CHUNK_DELAY_MS', 'chunkDelayMs']] as const) {
    const raw = process.env[name];
    if (raw === undefined || raw === '') continue;
    if (!/^\d{1,7}$/.test(raw)) {
      console.error(`${name} must be a whole number of milliseconds, got "${raw}"`);
      process.exit(2);
    }
    pace[key] = Number(raw);
  }
  const sim = await startSimulator({ catalog, port, host, ...pace });
  console.log(`provider simulator listening on ${sim.url} (catalog ${catalog.version})
  Anthropic SDK: baseURL ${sim.url}      (or ANTHROPIC_BASE_URL=${sim.url})
  OpenAI SDK:    baseURL ${sim.url}/v1   (or OPENAI_BASE_URL=${sim.url}/v1)
  Gemini SDK:    httpOptions.baseUrl ${sim.url}
  Any API key works; each key gets its own cache.`);

  const shutdown = () => {
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  if (err instanceof CatalogError) {
    console.error(err.message);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
