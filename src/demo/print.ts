import { percent, table, tokens, usd } from '../cli/table';

interface HandleReport {
  handle: { id: string; kind: string | null; type: string; name: string | null };
  requests: number;
  tokens: Record<string, number>;
  capture_rate: number | null;
  money: { realised_savings: number; leaked_savings: number; leaked_by_class: Record<string, number>; write_premiums_unread: number };
}

const LEAKS = ['cold', 'drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback', 'unconfirmed'];

/** One row per handle: referenced, opportunity, captured, each leak that happened, capture rate and money. */
export async function printReport(api: <T>(method: string, path: string) => Promise<T>, ids: string[]): Promise<void> {
  const reports = await Promise.all(ids.map((id) => api<HandleReport>('GET', `/v1/reports/handles/${id}`)));
  const leaks = LEAKS.filter((l) => reports.some((r) => (r.tokens[l] ?? 0) > 0));
  const header = ['handle', 'requests', 'referenced', 'opportunity', 'captured', ...leaks, 'capture', 'saved', 'leaked'];
  const rows = reports.map((r) => [
    `${r.handle.name ?? r.handle.id} (${r.handle.kind ?? r.handle.type})`,
    String(r.requests),
    tokens(r.tokens.referenced),
    tokens(r.tokens.opportunity),
    tokens(r.tokens.captured),
    ...leaks.map((l) => tokens(r.tokens[l])),
    percent(r.capture_rate),
    usd(r.money.realised_savings),
    usd(r.money.leaked_savings),
  ]);
  console.log(table(header, rows, ['left', ...header.slice(1).map(() => 'right' as const)]));
  // The leaked money by the class that missed it, the costliest first: what each cause cost.
  const causes = reports.flatMap((r) => {
    const by = Object.entries(r.money.leaked_by_class).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
    return by.length ? [[`${r.handle.name ?? r.handle.id}`, by.map(([c, v]) => `${c} ${usd(v)}`).join(' · ')]] : [];
  });
  if (causes.length) console.log(`\nleaked, by cause\n${table(['handle', 'leaked by cause'], causes, ['left', 'left'])}`);
}
