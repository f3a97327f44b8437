// Rebuilds a streamed answer into the provider's non-streaming response shape,
// so `replyMessage` converts both the same way, and says when the stream has
// delivered its last meaningful event (each format's rebuilder is in its module of formats/).

import { PROXY_FORMATS, type ProxyFormat, type StreamReply } from './formats';

export type { StreamReply } from './formats';

export function createStreamReply(format: ProxyFormat): StreamReply {
  return PROXY_FORMATS[format].streamReply();
}
