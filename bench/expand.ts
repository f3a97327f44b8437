// Expand over HTTP vs a bare Hono handler serving the same bytes from memory.
// Target: expand reaches ≥ 0.8× the bare handler's req/s at 4 KB and 64 KB.
import {
  type Benchmark,
  type WrkResult,
  WRK_DEFAULTS,
  compareAlternating,
  fetchOk,
  fmt,
  postJson,
  printTable,
  requireWrk,
  startBare,
  startService,
  writeResults,
} from './lib';

const SIZES = [
  { label: '4 KB', bytes: 4 * 1024, target: 0.8 },
  { label: '64 KB', bytes: 64 * 1024, target: 0.8 },
  { label: '400 KB', bytes: 400 * 1024, target: undefined },
];
const WARMUP_SECONDS = 2;
const ROUNDS = 3;
const FORMAT = 'anthropic';

const PARAGRAPH =
  'The retrieval service answers queries against the indexed corpus of internal design notes. ' +
  'Each note carries an owner, a review date and a list of linked tickets; when a note is superseded, ' +
  'the newer note says so in its first line and the older one is kept for audit. Prefer the newest ' +
  'note when two disagree, cite the note id in square brackets, and say plainly when nothing in the ' +
  'corpus covers the question instead of guessing.\n\n';

/** Document text of exactly `size` bytes (ASCII), numbered paragraphs so it is not one repeated line. */
function documentText(size: number): string {
  let text = '';
  for (let i = 1; text.length < size; i++) text += `Section ${i}. ${PARAGRAPH}`;
  return text.slice(0, size);
}

interface Row {
  size: string;
  contentBytes: number;
  responseBytes: number;
  path: string;
  bare: WrkResult;
  expand: WrkResult;
  ratio: number;
  rounds: { baseline: number; subject: number }[];
  target: number | undefined;
  pass: boolean | undefined;
}

async function run(): Promise<void> {
  requireWrk();
  const service = await startService();
  const auth = { Authorization: `Bearer ${service.apiKey}` };

  // Mint one document per size and expand once to learn the exact bytes the bare server must serve.
  const fixtures: { size: (typeof SIZES)[number]; path: string; barePath: string; bytes: Buffer }[] = [];
  for (const size of SIZES) {
    const minted = await postJson<{ id: string; version: number }>(`${service.url}/v1/artifacts`, service.apiKey, {
      kind: 'document',
      name: `bench ${size.label}`,
      content: documentText(size.bytes),
    });
    const path = `/v1/handles/${minted.id}@${minted.version}/expand?format=${FORMAT}`;
    const bytes = Buffer.from(await (await fetchOk(service.url + path, { headers: auth })).arrayBuffer());
    fixtures.push({ size, path, barePath: `/bytes/${size.bytes}`, bytes });
  }

  const bare = await startBare(Object.fromEntries(fixtures.map((f) => [f.barePath, f.bytes])));
  // Both must serve identical bytes, or the comparison means nothing.
  for (const f of fixtures) {
    const got = Buffer.from(await (await fetchOk(bare.url + f.barePath)).arrayBuffer());
    if (!got.equals(f.bytes)) throw new Error(`bare server bytes differ for ${f.size.label}`);
  }

  console.log(
    `wrk -t${WRK_DEFAULTS.threads} -c${WRK_DEFAULTS.connections} -d${WRK_DEFAULTS.seconds}s, ${WARMUP_SECONDS}s warm-up, ` +
      `bare and expand alternated ${ROUNDS}× per size, median run shown; format=${FORMAT}\n`,
  );
  const rows: Row[] = [];
  for (const f of fixtures) {
    const c = await compareAlternating({ url: bare.url + f.barePath }, { url: service.url + f.path, headers: auth }, { rounds: ROUNDS, warmupSeconds: WARMUP_SECONDS });
    const target = f.size.target;
    rows.push({
      size: f.size.label,
      contentBytes: f.size.bytes,
      responseBytes: f.bytes.length,
      path: f.path,
      bare: c.baseline,
      expand: c.subject,
      ratio: c.ratio,
      rounds: c.rounds,
      target,
      pass: target === undefined ? undefined : c.ratio >= target,
    });
  }

  printTable(
    ['size', 'body', 'bare req/s', 'expand req/s', 'ratio', 'bare p50/p99', 'expand p50/p99', 'target'],
    rows.map((r) => [
      r.size,
      fmt.bytes(r.responseBytes),
      fmt.rps(r.bare.rps),
      fmt.rps(r.expand.rps),
      fmt.ratio(r.ratio),
      `${fmt.ms(r.bare.p50Ms)} / ${fmt.ms(r.bare.p99Ms)}`,
      `${fmt.ms(r.expand.p50Ms)} / ${fmt.ms(r.expand.p99Ms)}`,
      r.target === undefined ? '—' : r.pass ? `PASS ≥${r.target}×` : `below ${r.target}×`,
    ]),
  );

  const file = writeResults('expand', {
    benchmark: 'expand',
    measuredAt: new Date().toISOString(),
    node: process.version,
    wrk: { ...WRK_DEFAULTS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS },
    format: FORMAT,
    results: rows,
  });
  console.log(`\nresults written to ${file}`);

  await Promise.all([service.stop(), bare.stop()]);
}

export const expandBenchmarks: Benchmark[] = [{ name: 'expand', run }];
