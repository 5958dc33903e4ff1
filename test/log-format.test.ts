import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { TSX } from './helpers/cli.js';

const run = promisify(execFile);
const SRC = path.join(import.meta.dirname, '../src');

/** A log line written as a node writes it (LOG_FORMAT read by loadConfig), on a terminal (`script` gives it a pty) or into a pipe. */
async function logLine(opts: { tty: boolean; format?: string }): Promise<string> {
  const code = `import { loadConfig } from '${SRC}/config.ts'; import { createLogger } from '${SRC}/log.ts';
    createLogger('info', { format: loadConfig().logFormat }).info({ port: 8080 }, 'callrec listening');`;
  const node = [process.execPath, '--import', TSX, '--input-type=module', '-e', code];
  const env = { PATH: process.env.PATH ?? '', ...(opts.format ? { LOG_FORMAT: opts.format } : {}) };
  const quoted = node.map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ');
  const { stdout } = opts.tty
    ? await run('script', ['-qec', quoted, '/dev/null'], { env })
    : await run(node[0], node.slice(1), { env });
  return stdout;
}

test('on a terminal, lines for people (pino-pretty); into a pipe, or with LOG_FORMAT=json, JSON lines', async () => {
  const pretty = await logLine({ tty: true });
  expect(pretty).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.*: .*callrec listening/);
  expect(pretty).toMatch(/port.*: 8080/);
  for (const opts of [{ tty: false }, { tty: true, format: 'json' }]) {
    const line = JSON.parse((await logLine(opts)).trim()) as Record<string, unknown>;
    expect([opts, line]).toEqual([
      opts,
      expect.objectContaining({
        level: 30,
        msg: 'callrec listening',
        port: 8080,
        pid: expect.any(Number),
        host: expect.any(String),
      }),
    ]);
  }
  // LOG_FORMAT=pretty asks for it without a terminal.
  expect(await logLine({ tty: false, format: 'pretty' })).toMatch(/INFO.*callrec listening/);
}, 60_000);
