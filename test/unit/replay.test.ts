// The answers kept for an SDK's retry (src/http/proxy/replay.ts): bounded by bytes, each answer and all of them.
import { describe, expect, it } from 'vitest';
import { AnswerBytes, ANSWER_CAP, ANSWERS_TOTAL, lastTurnCache, type LastTurn } from '../../src/http/proxy/replay';

const turn = (bytes: number): LastTurn => ({ version: 2, request: 'digest', answer: { status: 200, headers: {}, body: Buffer.alloc(bytes) } });

describe('kept answers', () => {
  it('all of them together stay within the total: the oldest unused go first', () => {
    const cache = lastTurnCache();
    const each = ANSWER_CAP - 1024;
    const fit = Math.floor(ANSWERS_TOTAL / (each + 512));
    for (let i = 0; i < fit; i++) cache.set(`ses_${i}`, turn(each));
    expect(cache.peek('ses_0')).toBeDefined();
    cache.set('ses_next', turn(each));
    expect(cache.peek('ses_0')).toBeUndefined();
    expect(cache.peek('ses_1')).toBeDefined();
    expect(cache.peek('ses_next')).toBeDefined();
  });

  it("a stream's bytes are kept as they went out, until they pass the cap", () => {
    const kept = new AnswerBytes();
    kept.push(Buffer.from('data: {"a":1}\n\n'));
    kept.push(new Uint8Array(Buffer.from('data: [DONE]\n\n')));
    expect(kept.bytes()!.toString()).toBe('data: {"a":1}\n\ndata: [DONE]\n\n');
    const over = new AnswerBytes();
    over.push(Buffer.alloc(ANSWER_CAP));
    expect(over.bytes()!.length).toBe(ANSWER_CAP);
    over.push(Buffer.from('x'));
    expect(over.bytes()).toBeNull();
  });
});
