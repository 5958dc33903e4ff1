import os from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /**
   * `LOG_FORMAT`: `json` always writes JSON lines; `pretty` writes them for people (pino-pretty);
   * `auto` (default) is pretty on a terminal and JSON otherwise, as log collectors expect.
   */
  format?: 'auto' | 'json' | 'pretty';
  /** Where JSON lines go instead of stdout (tests read them). */
  destination?: DestinationStream;
}

/**
 * The process logger. Every line carries `pid` and `host` (and, once a node has claimed its
 * identity, `node`: a child logger), so lines from several nodes merged by a collector can be
 * told apart; errors go under `err` (pino's serializer keeps type, message and stack).
 */
export function createLogger(level: string, opts: LoggerOptions = {}): Logger {
  const base = { service: 'callrec', pid: process.pid, host: os.hostname() };
  const format = opts.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && !opts.destination && process.stdout.isTTY === true);
  if (!pretty) return pino({ level, base }, opts.destination);
  // A worker-thread transport: formatting for people stays off the media path's thread.
  return pino({
    level,
    base,
    transport: {
      target: 'pino-pretty',
      options: { ignore: 'service,pid,host,node', translateTime: 'SYS:HH:MM:ss.l', destination: 1 },
    },
  });
}
