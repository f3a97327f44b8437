// Server-sent events from the provider to the client, event by event as they
// arrive (never buffered whole). Each complete event is shown to the caller —
// which reads usage and the reply from it and may hold one back — and then its
// bytes go on exactly as the provider sent them.

import { SseParser } from '../../domain/usage/stream';

export interface RelayHooks {
  /** One complete event, its data JSON-parsed when it is JSON. Returns false to keep it from the client. */
  onEvent(data: unknown, event: string | undefined): boolean;
  /** The provider closed the stream normally. */
  onEnd(): void;
  /** The provider's connection failed, or the client went away. */
  onInterrupt(reason: unknown): void;
  /**
   * Drops the client's connection (under @hono/node-server: destroy the response). Without it the
   * stream is errored, which the adapter answers by writing an error text into the body first.
   */
  dropClient?: () => void;
}

interface UpstreamBody extends AsyncIterable<Buffer> {
  destroy(error?: Error): void;
}

const LF = 10;
const CR = 13;

/** End offset of the first event in `buf` (just after its blank line), or -1 when it is not complete yet. */
function eventEnd(buf: Buffer): number {
  for (let i = 0; i < buf.length - 1; i++) {
    const a = buf[i];
    const b = buf[i + 1];
    if (a === LF && b === LF) return i + 2;
    if (a === CR && b === CR) return i + 2;
    if (a === CR && b === LF && buf[i + 2] === CR && buf[i + 3] === LF) return i + 4;
    if (a === LF && b === CR && buf[i + 2] === LF) return i + 3;
  }
  return -1;
}

function parseData(data: string): unknown {
  if (data === '' || data[0] !== '{') return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

export function relayEvents(body: UpstreamBody, hooks: RelayHooks): ReadableStream<Uint8Array> {
  const iterator = body[Symbol.asyncIterator]();
  const parser = new SseParser();
  let pending: Buffer = Buffer.alloc(0);
  let settled = false;

  const interrupt = (reason: unknown) => {
    if (settled) return;
    settled = true;
    hooks.onInterrupt(reason);
  };

  /** The complete events in `pending` that go on to the client. */
  function take(): Buffer[] {
    const out: Buffer[] = [];
    for (let end = eventEnd(pending); end !== -1; end = eventEnd(pending)) {
      const frame = pending.subarray(0, end);
      pending = pending.subarray(end);
      let keep = true;
      for (const m of parser.feed(frame.toString('utf8'))) keep = hooks.onEvent(parseData(m.data), m.event) && keep;
      if (keep) out.push(frame);
    }
    return out;
  }

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          for (;;) {
            const next = await iterator.next();
            if (next.done) {
              // Bytes after the last blank line are not an event, but they are the provider's: pass them on.
              if (pending.length) controller.enqueue(pending);
              settled = true;
              hooks.onEnd();
              controller.close();
              return;
            }
            pending = pending.length ? Buffer.concat([pending, next.value]) : next.value;
            const out = take();
            if (out.length) {
              controller.enqueue(out.length === 1 ? out[0]! : Buffer.concat(out));
              return;
            }
          }
        } catch (err) {
          // The provider dropped the connection or timed out: the client's stream breaks the same way.
          interrupt(err);
          if (hooks.dropClient) hooks.dropClient();
          else controller.error(err);
        }
      },
      cancel(reason) {
        interrupt(reason ?? new Error('client closed the stream'));
        body.destroy();
      },
    },
    // Pull only when the client's socket takes more: backpressure reaches the provider.
    { highWaterMark: 0 },
  );
}
