// An Anthropic-defined tool (`{"type": "bash_20250124", "name": "bash"}`) costs what the API writes for its version, a
// figure the catalog holds per model (`definedToolTokens`). A version it has no figure for — newer than the catalog
// (`bash_20990101`), or one Anthropic documents none for (`text_editor_20250728`) — is accepted and sent as given,
// since new versions ship before any catalog knows them, but its tokens are estimated from its few bytes of JSON
// where the API adds hundreds: the render and the mint say so.

import { DEFINED_TOOL_TYPE } from './content';
import type { RenderWarning } from './requests';

export interface EstimatedTool {
  name: string;
  type: string;
  /** The segment it is in (a render); null at mint. */
  segment: number | null;
}

/** An Anthropic-defined tool in `tool` (a tool version in its `type`) whose figure `figured` does not know, else null. */
export function estimatedTool(tool: unknown, figured: (type: string) => boolean, segment: number | null): EstimatedTool | null {
  if (typeof tool !== 'object' || tool === null || Array.isArray(tool)) return null;
  const { type, name } = tool as { type?: unknown; name?: unknown };
  if (typeof type !== 'string' || !DEFINED_TOOL_TYPE.test(type) || figured(type)) return null;
  return { name: typeof name === 'string' ? name : '', type, segment };
}

/** The warning, in the one wording of /v1/render's warnings, the proxy's x-ph-warnings (by code) and a mint's. */
export function estimatedToolWarning(t: EstimatedTool, entry: string | null): RenderWarning {
  return {
    code: 'tool_tokens_estimated',
    segment: t.segment,
    kind: 'tool',
    text: t.type,
    detail: `the catalog has no token figure for the Anthropic-defined tool "${t.name}" (${t.type}) ${entry === null ? 'on any model' : `on ${entry}`}: it is sent as given, and its tokens are estimated from its JSON (the API adds its own definition, often hundreds of tokens); a measured figure goes in PH_CATALOG_FILE as the model's definedToolTokens`,
  };
}
