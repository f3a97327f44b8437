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
  /** Each piece of bytes as it goes to the client. */
  onForward?: (bytes: Uint8Array) => void;
}

interface UpstreamBody extends AsyncIterable<Buffer> {
  destroy(error?: Error): void;
}

const LF = 10;
const CR = 13;

/**
 * Cuts the provider's bytes into events, each ending just after its blank line, whatever the chunks: a line ends
 * with LF, CRLF or a lone CR (the SSE spec's three, mixed as they come), and a CR at a chunk's end waits for the
 * next byte to know whether an LF is its own. Each byte is looked at once and an event's bytes joined once,
 * however many chunks it came in (a Responses terminal event carries the whole answer: megabytes).
 */
export class EventFramer {
  private held: Buffer[] = [];
  /** The line under way has a byte other than its end. */
  private inLine = false;
  /** The last byte seen was a CR ending a line; `crEnds`: the line was blank, so it ends the event. */
  private afterCr = false;
  private crEnds = false;

  /** The events complete after `chunk`, each with its own bytes. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let from = 0;
    const cut = (at: number) => {
      this.held.push(chunk.subarray(from, at));
      out.push(this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held));
      this.held = [];
      from = at;
    };
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (this.afterCr) {
        this.afterCr = false;
        if (b === LF) {
          if (this.crEnds) cut(i + 1);
          continue;
        }
        if (this.crEnds) cut(i);
      }
      if (b === CR) {
        this.afterCr = true;
        this.crEnds = !this.inLine;
        this.inLine = false;
      } else if (b === LF) {
        if (!this.inLine) cut(i + 1);
        this.inLine = false;
      } else this.inLine = true;
    }
    if (from < chunk.length) this.held.push(chunk.subarray(from));
    return out;
  }

  /**
   * The stream has ended: the last event, when a blank line's CR ended it at the very end, and the bytes after the
   * last complete event (not an event: a client's SSE reader drops them too).
   */
  end(): { events: Buffer[]; rest: Buffer } {
    const held = Buffer.concat(this.held);
    this.held = [];
    return this.afterCr && this.crEnds ? { events: [held], rest: Buffer.alloc(0) } : { events: [], rest: held };
  }
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
  const framer = new EventFramer();
  let settled = false;

  const interrupt = (reason: unknown) => {
    if (settled) return;
    settled = true;
    hooks.onInterrupt(reason);
  };

  /** Of the complete events, those that go on to the client. */
  function take(frames: Buffer[]): Buffer[] {
    const out: Buffer[] = [];
    for (const frame of frames) {
      let keep = true;
      for (const m of parser.feed(frame.toString('utf8'))) keep = hooks.onEvent(parseData(m.data), m.event) && keep;
      if (keep) out.push(frame);
    }
    return out;
  }

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const send = (bytes: Buffer) => {
          hooks.onForward?.(bytes);
          controller.enqueue(bytes);
        };
        try {
          for (;;) {
            const next = await iterator.next();
            if (next.done) {
              // Bytes after the last blank line are not an event, but they are the provider's: passed on, unread.
              const { events, rest } = framer.end();
              for (const frame of [...take(events), rest]) if (frame.length) send(frame);
              settled = true;
              hooks.onEnd();
              controller.close();
              return;
            }
            const out = take(framer.push(next.value));
            if (out.length) {
              send(out.length === 1 ? out[0]! : Buffer.concat(out));
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
