import { percent, table, tokens, usd } from '../cli/table';

interface HandleReport {
  handle: { id: string; kind: string | null; type: string; name: string | null };
  requests: number;
  tokens: Record<string, number>;
  capture_rate: number | null;
  money: { realised_savings: number; leaked_savings: number; write_premiums_unread: number };
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
}
