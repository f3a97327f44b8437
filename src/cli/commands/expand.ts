import { seg } from '../api';
import { expansionFormats } from '../../domain/render/prompt';
import { API_HELP, API_OPTIONS, UsageError, type Command } from '../command';

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
    const format = values.format === undefined ? undefined : String(values.format);
    // A wrong format is the caller's usage (exit 2), said before any call.
    if (format !== undefined && !(expansionFormats as readonly string[]).includes(format))
      throw new UsageError(`--format: one of ${expansionFormats.join(', ')} (got '${format}')`);
    const query = format !== undefined ? `?format=${encodeURIComponent(format)}` : '';
    const bytes = await api().bytes(`/v1/handles/${seg(positionals[0]!)}/expand${query}`);
    process.stdout.write(bytes);
    return 0;
  },
};
