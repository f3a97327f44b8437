// neutral: our stored shapes, as stored (an expansion format, not a provider's), wrapped as Anthropic's Messages API.
import { emitJson } from '../../canonical-json';
import { arr, canon, objectJson, toolNeutral } from './shared';
import type { Serialisation } from './types';

export const neutral: Serialisation = {
  definedTools: true,
  items(seg) {
    if (seg.section === 'tools') return seg.tools.map((t) => emitJson(toolNeutral(t)));
    if (seg.section === 'system') return [JSON.stringify(seg.text)];
    return seg.messages.map((m) => emitJson({ role: m.role, content: canon(m.content) }));
  },
  wrap: (tools, system, messages) => objectJson(tools.length > 0 && ['tools', arr(tools)], system.length > 0 && ['system', arr(system)], ['messages', arr(messages)]),
};
