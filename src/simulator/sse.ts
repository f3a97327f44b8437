// A text/event-stream response that really streams: frames are enqueued one at a
// time with a delay between them, writing stops when the client goes away, and
// `abortAfter` drops the connection mid-stream the way a network failure would.

export interface StreamTiming {
  firstByteDelayMs: number;
  chunkDelayMs: number;
  /** Write this many frames, then drop the connection. null = never. */
  abortAfter: number | null;
  /**
   * Tears the connection down (under @hono/node-server: destroy the ServerResponse). Without
   * one the body is errored instead, which the server adapter turns into a destroyed connection too.
   */
  drop?: () => void;
}

export function sseResponse(frames: string[], timing: StreamTiming, headers: Record<string, string>): Response {
  const encoder = new TextEncoder();
  let cancelled = false;

  async function run(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    await sleep(timing.firstByteDelayMs);
    for (let i = 0; i < frames.length; i++) {
      if (cancelled) return;
      if (timing.abortAfter !== null && i >= timing.abortAfter) {
        // Let the frames already written reach the socket before it is torn down.
        await drained(controller, () => cancelled);
        await sleep(20);
        if (cancelled) return;
        if (timing.drop) timing.drop();
        else controller.error(new Error('simulated connection drop (x-simulator-abort-after)'));
        return;
      }
      if (i > 0) await sleep(timing.chunkDelayMs);
      if (cancelled) return;
      controller.enqueue(encoder.encode(frames[i]));
    }
    controller.close();
  }

  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      // Not awaited: start() must return so the response can be sent while frames are produced.
      run(controller).catch(() => {
        // enqueue/close after the client cancelled throw; nothing is left to tell.
      });
    },
    cancel() {
      cancelled = true;
    },
  });

  return new Response(body, {
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers },
  });
}

export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

/** Waits until the consumer has pulled every queued frame. */
async function drained(controller: ReadableStreamDefaultController<Uint8Array>, stop: () => boolean): Promise<void> {
  while (!stop() && controller.desiredSize !== null && controller.desiredSize < 1) await sleep(5);
}
