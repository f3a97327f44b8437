// The service's own lines (start, stop): under PH_LOG=json, JSON lines in the shape of the request lines (level,
// time, msg, then fields), so a log pipeline reads every line of its stdout; with PH_LOG=off (request lines
// silenced: a person at a terminal) the sentence alone, as plain text.

export type LogFormat = 'json' | 'off';
export type LogFields = Record<string, string | number | boolean | undefined>;

export interface ServiceLog {
  /** On stdout. */
  info(msg: string, fields?: LogFields): void;
  /** On stderr. */
  error(msg: string, fields?: LogFields): void;
}

export function serviceLog(format: LogFormat): ServiceLog {
  const line = (level: 'info' | 'error', msg: string, fields: LogFields) =>
    format === 'json' ? `${JSON.stringify({ level, time: new Date().toISOString(), msg, ...fields })}\n` : `${msg}\n`;
  return {
    info: (msg, fields = {}) => void process.stdout.write(line('info', msg, fields)),
    error: (msg, fields = {}) => void process.stderr.write(line('error', msg, fields)),
  };
}
