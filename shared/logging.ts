/**
 * Structured log events with stable names (for Application Insights queries and alerts).
 * Fields pass through `redact` first: a value under a sensitive key is replaced, and anything
 * that looks like a JWT is cut out of strings, so a careless call site cannot leak a token.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export type LogLevelName = 'info' | 'warn' | 'error';
export type LogSink = (level: LogLevelName, line: string) => void;

/** A key naming a secret thing (`accessToken`, `client_secret`, `value`), not one naming facts about it (`tokenExpiresOn`). */
const SENSITIVE_KEY =
  /(token|secret|password|verifier|assertion|authorization|cookie|credential|client_info|cache|^value|^code)$/i;
const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return value.replace(JWT, '[redacted-jwt]');
  if (value instanceof Error) return { name: value.name, message: redactValue(value.message, depth + 1) };
  if (Array.isArray(value)) return depth > 4 ? '[…]' : value.map((item) => redactValue(item, depth + 1));
  if (value && typeof value === 'object') return depth > 4 ? '[…]' : redact(value as LogFields, depth + 1);
  return value;
}

export function redact(fields: LogFields, depth = 0): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    // Nothing to hide, and "[redacted]" would say there was (a passing test has no error code).
    if (value === undefined) continue;
    // `code` is our stable error code (safe), but an OAuth authorization code under that name
    // would not be: only known-safe shapes (snake_case words) pass.
    if (key === 'code' && typeof value === 'string' && /^[a-z_]{3,40}$/.test(value)) {
      out[key] = value;
    } else if (SENSITIVE_KEY.test(key)) {
      out[key] = '[redacted]';
    } else {
      out[key] = redactValue(value, depth);
    }
  }
  return out;
}

const consoleSink: LogSink = (level, line) => {
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
};

export function createLogger(sink: LogSink = consoleSink, base: LogFields = {}): Logger {
  const write = (level: LogLevelName, event: string, fields: LogFields = {}) => {
    sink(
      level,
      JSON.stringify({ level, event, time: new Date().toISOString(), ...redact({ ...base, ...fields }) }),
    );
  };
  return {
    info: (event, fields) => {
      write('info', event, fields);
    },
    warn: (event, fields) => {
      write('warn', event, fields);
    },
    error: (event, fields) => {
      write('error', event, fields);
    },
  };
}
