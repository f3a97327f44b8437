// A loopback OTLP/HTTP receiver for the trace export's tests: a node:http server that decodes the JSON bodies the
// exporter posts to /v1/traces into spans with plain attributes.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

type Value = { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: Value[] } };
type KeyValue = { key: string; value: Value };
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: KeyValue[];
  events?: Array<{ name: string; timeUnixNano: string | number; attributes?: KeyValue[] }>;
  status?: { code?: number; message?: string };
}
export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  start: number;
  end: number;
  attrs: Record<string, unknown>;
  events: Array<{ name: string; attrs: Record<string, unknown> }>;
  status: { code?: number; message?: string };
  resource: Record<string, unknown>;
}

const valueOf = (v: Value): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? (v.arrayValue ? (v.arrayValue.values ?? []).map(valueOf) : undefined);
const attributes = (list: KeyValue[] = []) => Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]));
const ms = (nanos: string | number) => Number(BigInt(nanos) / 1_000_000n);

/** An OTLP/HTTP receiver on a free loopback port: the spans of the JSON bodies it took, and what it answers. */
export async function receiver(status = 200, hold?: Promise<void>) {
  const spans: Span[] = [];
  const bodies: Array<{ type: string | undefined; headers: Record<string, string | string[] | undefined> }> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', async () => {
      await hold;
      bodies.push({ type: req.headers['content-type'], headers: req.headers });
      if (status === 200 && req.url === '/v1/traces') {
        const parsed = JSON.parse(body) as { resourceSpans: Array<{ resource: { attributes: KeyValue[] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
        for (const rs of parsed.resourceSpans)
          for (const ss of rs.scopeSpans)
            for (const s of ss.spans)
              spans.push({
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId || undefined,
                name: s.name,
                kind: s.kind,
                start: ms(s.startTimeUnixNano),
                end: ms(s.endTimeUnixNano),
                attrs: attributes(s.attributes),
                events: (s.events ?? []).map((e) => ({ name: e.name, attrs: attributes(e.attributes) })),
                status: s.status ?? {},
                resource: attributes(rs.resource.attributes),
              });
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, spans, bodies, close: () => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())) };
}
