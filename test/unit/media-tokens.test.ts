import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mediaSpans, mediaTokens } from '../../src/domain/media-tokens';
import { countTokens, tokenCounts, tokenCountsAt } from '../../src/domain/tokens';
import { png } from '../helpers/media';
import { computeReuseMetadata } from '../../src/domain/reuse-metadata';

/** A baseline JPEG: SOI, an APP0 segment, then SOF0 with the size. */
function jpeg(width: number, height: number): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, ...Buffer.from('JFIF\0', 'latin1'), 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 8, height >> 8, height & 255, width >> 8, width & 255, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, randomBytes(50_000)]);
}

function pdf(pages: number): Buffer {
  const objects = Array.from({ length: pages }, (_, i) => `${i + 3} 0 obj << /Type /Page /Parent 2 0 R >> endobj\n`).join('');
  return Buffer.from(`%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Count ${pages} >> endobj\n${objects}${'x'.repeat(2000)}\n%%EOF`, 'latin1');
}

const anthropicImage = (bytes: Buffer, mediaType = 'image/png') => JSON.stringify({ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: mediaType, data: bytes.toString('base64') } }, { type: 'text', text: 'What is on this screen?' }] });

describe('images and PDFs are counted as providers bill them, not as base64 text', () => {
  it('an image by its pixels, per provider family', () => {
    const [span] = mediaSpans(anthropicImage(png(1200, 800)));
    expect(span!.media).toEqual({ kind: 'image', width: 1200, height: 800 });
    // Anthropic: 1200 × 800 / 750 (under 1568 px and 1.15 MP, not scaled).
    expect(mediaTokens(span!.media, 'anthropic')).toBe(1280);
    // OpenAI: short side to 768 → 1152 × 768 → 3 × 2 tiles of 512: 85 + 6 × 170.
    expect(mediaTokens(span!.media, 'o200k_base')).toBe(1105);
    // Gemini: 2 × 2 tiles of 768, 258 each.
    expect(mediaTokens(span!.media, 'gemini')).toBe(1032);
    // A large screenshot is scaled to Anthropic's cap (about 1,600 tokens), a small icon is one Gemini tile.
    expect(mediaTokens({ kind: 'image', width: 3840, height: 2160 }, 'anthropic')).toBeLessThanOrEqual(1600);
    expect(mediaTokens({ kind: 'image', width: 3840, height: 2160 }, 'anthropic')).toBeGreaterThan(1400);
    expect(mediaTokens({ kind: 'image', width: 64, height: 64 }, 'gemini')).toBe(258);
  });

  it('finds JPEG sizes, data: URLs (OpenAI), Gemini inlineData and PDF pages', () => {
    const chat = JSON.stringify({ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${jpeg(640, 480).toString('base64')}` } }] });
    expect(mediaSpans(chat).map((s) => s.media)).toEqual([{ kind: 'image', width: 640, height: 480 }]);
    const gemini = JSON.stringify({ role: 'user', parts: [{ inlineData: { mimeType: 'image/png', data: png(300, 200).toString('base64') } }] });
    expect(mediaSpans(gemini).map((s) => s.media)).toEqual([{ kind: 'image', width: 300, height: 200 }]);
    const doc = JSON.stringify({ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: pdf(3).toString('base64') } });
    const [span] = mediaSpans(doc);
    expect(span!.media).toEqual({ kind: 'pdf', pages: 3 });
    expect(mediaTokens(span!.media, 'anthropic')).toBe(3 * 2250);
    expect(mediaTokens(span!.media, 'gemini')).toBe(3 * 258);
  });

  it('a 300 KB screenshot in a message is about 1,300 tokens, not 300,000; the text beside it is counted as text', () => {
    const image = png(1200, 800, 220_000);
    const message = anthropicImage(image);
    const asText = countTokens(image.toString('base64'), 'o200k_base');
    expect(asText).toBeGreaterThan(100_000);
    const textOnly = JSON.stringify({ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: '' } }, { type: 'text', text: 'What is on this screen?' }] });
    // (The text around the payload is counted in two pieces: a token or two either way at the cut.)
    const near = (n: number, expected: number) => expect(Math.abs(n - expected), `${n} vs ${expected}`).toBeLessThanOrEqual(3);
    near(countTokens(message, 'anthropic'), countTokens(textOnly, 'anthropic') + 1280);
    // Every family, and the counts minting uses (with and without a change offset), agree.
    const all = tokenCounts(message);
    near(all.o200k_base, countTokens(textOnly, 'o200k_base') + 1105);
    near(all.gemini, countTokens(textOnly, 'gemini') + 1032);
    const at = tokenCountsAt(message, Buffer.byteLength(message) - 10);
    expect(at.total).toEqual(all);
    expect(at.before.anthropic).toBeLessThanOrEqual(all.anthropic);
    expect(at.before.anthropic).toBeGreaterThan(1280);
  });

  it('a system prompt or document is text throughout: JSON written in it is counted as the text it is', () => {
    const text = `Here is the payload as our API returns it: {"data":"${png(640, 480, 30_000).toString('base64')}"}`;
    const asText = computeReuseMetadata({ text, media: false }).tokens.o200k_base;
    expect(asText).toBeGreaterThan(10_000);
    expect(asText).toBe(countTokens(text, 'o200k_base', false));
    // Read as JSON (tools, messages), the same member is an image.
    expect(computeReuseMetadata({ text }).tokens.o200k_base).toBeLessThan(1000);
    const changed = computeReuseMetadata({ text: `${text} (v2)`, previous: { text }, media: false });
    expect(changed.tokens.o200k_base).toBeGreaterThan(10_000);
  });

  it('base64 that is no image or PDF, a short payload, or a data member of other text stays text', () => {
    const random = randomBytes(30_000).toString('base64');
    for (const text of [
      JSON.stringify({ data: random }),
      JSON.stringify({ type: 'text', text: `data:text/plain;base64,${random}` }),
      JSON.stringify({ data: png(10, 10, 50).toString('base64') }),
      JSON.stringify({ data: 'QUJD', note: 'x'.repeat(400) }),
      // A page's inline image is text to a provider, billed as text (an HTML or CSS document, a system prompt).
      `<p>Report</p><img src="data:image/png;base64,${png(1200, 800, 3000).toString('base64')}">`,
      `.logo { background: url("data:image/png;base64,${png(64, 64, 3000).toString('base64')}"); }`,
    ])
      expect(mediaSpans(text), text.slice(0, 60)).toEqual([]);
    expect(countTokens(JSON.stringify({ data: random }), 'o200k_base')).toBeGreaterThan(10_000);
  });

  it('a text of many "data" members and data: strings is scanned once, and the images among them are still found', () => {
    // An API's JSON answer as a tool result: 80,000 rows with a "data" member, then 80,000 strings that start "data:".
    const rows = Array.from({ length: 80_000 }, (_, i) => ({ data: `v${i}` }));
    const notes = Array.from({ length: 80_000 }, (_, i) => `data: ${i}`);
    const text = JSON.stringify({ rows, notes, a: `data:image/png;base64,${png(300, 200).toString('base64')}`, b: { data: png(64, 32).toString('base64') } });
    const started = performance.now();
    const spans = mediaSpans(text);
    // Each step searched both markers to the end of the text: minutes for these 2.6 MB.
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(spans.map((s) => s.media)).toEqual([
      { kind: 'image', width: 300, height: 200 },
      { kind: 'image', width: 64, height: 32 },
    ]);
  });

  it('a PDF of very many page trees is counted, not a stack overflow (a 500 at render and at mint)', () => {
    const many = Buffer.from(`%PDF-1.4\n${'/Type/Pages/Count 1\n'.repeat(150_000)}/Type/Pages/Count 7\n%%EOF`, 'latin1');
    const text = JSON.stringify({ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: many.toString('base64') } });
    expect(mediaSpans(text).map((s) => s.media)).toEqual([{ kind: 'pdf', pages: 7 }]);
  });
});
