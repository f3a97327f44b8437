// `npm run bench [-- <filter>...]`: runs every benchmark in order, or those whose name contains a filter.
// To add one: export a Benchmark[] from bench/<name>.ts and spread it into BENCHMARKS.
import { expandBenchmarks } from './expand';
import { longSessionRenderBenchmarks } from './long-session-render';
import { noHandleBenchmarks } from './no-handle';
import { otlpBenchmarks } from './otlp';
import { proxyBenchmarks } from './proxy';
import { renderBenchmarks } from './render';
import { requestsBenchmarks } from './requests';
import { sessionsBenchmarks } from './sessions';
import { thinkingPrefixBenchmarks } from './thinking-prefix';
import { tenantDeleteBenchmarks } from './tenant-delete';
import { usageBenchmarks } from './usage';
import { type Benchmark, BenchSetupError, cleanup, warnIfBusy } from './lib';

const BENCHMARKS: Benchmark[] = [...expandBenchmarks, ...renderBenchmarks, ...usageBenchmarks, ...noHandleBenchmarks, ...requestsBenchmarks, ...sessionsBenchmarks, ...proxyBenchmarks, ...thinkingPrefixBenchmarks, ...longSessionRenderBenchmarks, ...tenantDeleteBenchmarks, ...otlpBenchmarks];

const filters = process.argv.slice(2);
const selected = BENCHMARKS.filter((b) => filters.length === 0 || filters.some((f) => b.name.includes(f)));
if (selected.length === 0) {
  console.error(`no benchmark matches ${filters.join(', ')}; have: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  process.exit(2);
}

warnIfBusy();
try {
  for (const b of selected) {
    console.log(`\n== ${b.name} ==`);
    await b.run();
  }
} catch (err) {
  console.error(err instanceof BenchSetupError ? err.message : err);
  cleanup();
  process.exit(1);
}
