// Pieces of our stored shapes several serialisations write alike.
import { Canonical } from '../../canonical-json';
import canonicalize from 'canonicalize';
import { isDefinedTool, type ContentBlock, type CustomTool, type ImageBlock, type Message, type ToolDefinition } from '../../content';

export const canon = (v: unknown) => new Canonical(canonicalize(v) ?? 'null');

export const arr = (items: string[]) => `[${items.join(',')}]`;

/** An object of the fields given (a `false` one left out), as JSON text in their order. */
export function objectJson(...fields: Array<[key: string, json: string] | false>): string {
  return `{${fields.flatMap((f) => (f ? [`${JSON.stringify(f[0])}:${f[1]}`] : [])).join(',')}}`;
}

export function blocksOf(m: Message): ContentBlock[] {
  return typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
}

export function dataUrl(image: ImageBlock): string {
  return image.source.type === 'base64' ? `data:${image.source.media_type};base64,${image.source.data}` : image.source.url;
}

export function textOf(content: string | Array<{ type: string; text?: string }> | undefined): string {
  if (content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((b) => (b.type === 'text' ? (b.text ?? '') : '')).join('\n');
}

export function toolNeutral(t: ToolDefinition) {
  // An Anthropic-defined tool as stored (canonical): it has no schema to write in another shape.
  if (isDefinedTool(t)) return canon(t);
  // A custom tool given its explicit `"type": "custom"` keeps it, first as Anthropic writes it (absent: no key, no byte).
  return { type: t.type, name: t.name, description: t.description, input_schema: canon(t.input_schema) };
}

/** The custom tools of a segment, for APIs other than Anthropic's (segmentItems refuses the others first). */
export const customTools = (seg: { tools: ToolDefinition[] }) => seg.tools.filter((t): t is CustomTool => !isDefinedTool(t));
