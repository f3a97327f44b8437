import { seg } from '../api';
import { API_HELP, API_OPTIONS, type Command } from '../command';

export const expand: Command = {
  name: 'expand',
  summary: 'write the exact bytes a ref expands to',
  help: `Usage: prefix-handles expand <ref> [--format F]

Writes the expansion of <ref> (id or id@version) to stdout, byte for byte,
with no newline added. The same ref and format give the same bytes forever.

Options:
  --format F        neutral (default), anthropic, openai-chat, openai-responses, gemini
${API_HELP}`,
  options: { ...API_OPTIONS, format: { type: 'string' } },
  positionals: [1, 1],
  async run({ values, positionals, api }) {
    const query = values.format !== undefined ? `?format=${encodeURIComponent(String(values.format))}` : '';
    const bytes = await api().bytes(`/v1/handles/${seg(positionals[0]!)}/expand${query}`);
    process.stdout.write(bytes);
    return 0;
  },
};
