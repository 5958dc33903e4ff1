import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** The process logger: JSON lines on stdout, as log collectors expect. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'callrec' } });
}
