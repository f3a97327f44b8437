import type { ContentBlock, Message } from '../../content';
import type { Json } from '../../records';

export type ProxyFormat = 'anthropic' | 'openai-chat' | 'openai-responses' | 'gemini';

/**
 * How the proxy reads one format's turn and reply for a session (to-neutral.ts keeps the flow every format shares: the
 * refusals of members a session cannot keep, the checks on the neutral messages) and rebuilds its streamed reply.
 */
export interface ProxyFormatRules {
  /** The body member that holds the messages. */
  messagesKey: string;
  /** The messages member's value (at `at`, its pointer) as neutral messages; what a session cannot keep is refused (a 422). */
  turnMessages(messages: unknown, at: string): Message[];
  /** The blocks of the assistant's reply in a response body; a DomainError when it cannot be kept whole (a tool call's arguments not an object). */
  replyBlocks(response: Json): ContentBlock[];
  /** Whether a body's input holds reasoning a session does not keep (x-ph-warnings `reasoning_not_kept`); absent: never. */
  reasoningNotKept?(body: Json): boolean;
  /** A fresh rebuilder of a streamed answer into the non-streaming response shape (createStreamReply in to-neutral.ts). */
  streamReply(): StreamReply;
  /** Whether a streamed answer may come as one JSON array of its chunks (Gemini's streamGenerateContent without ?alt=sse), read as its stream is. */
  chunksAsArray?: boolean;
  /**
   * The first part of a body that an SDK emptied where a handle block stood (@google/genai keeps only the part fields it
   * knows), with what to do instead: refused before any call, as the handle would be lost. Absent: no SDK does that.
   */
  droppedHandleBlock?(body: unknown): { at: string; detail: string } | null;
}

export interface StreamReply {
  /** Feeds one parsed event (`data` already JSON-parsed, or the raw string for sentinels like "[DONE]"). */
  push(data: unknown, event?: string): void;
  /** The provider's terminal event arrived: usage is final and the answer complete or failed. */
  readonly ended: boolean;
  /** The answer finished (Anthropic message_stop, a chat finish_reason, Responses response.completed or response.incomplete). */
  readonly succeeded: boolean;
  /** The answer so far, in the non-streaming response shape; UNKEEPABLE when an event's index could not be followed. */
  response(): unknown;
}
