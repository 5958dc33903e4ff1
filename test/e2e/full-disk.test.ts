import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fillDisk } from '../helpers/disk.js';
import { readyCall, startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);

/**
 * A real full disk under a real SQLite database: a small tmpfs (this needs root, as CI and
 * the development machines have) filled to the last byte.
 */
describe('a full disk never stops the API', () => {
  let mount: string;
  let ts: TestServer;
  let filler: string;

  beforeAll(async () => {
    mount = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-full-'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount]);
    filler = path.join(mount, 'filler');
    ts = await startTestServer({ env: { DATABASE_URL: `sqlite://${path.join(mount, 'callrec.db')}` } });
  });

  afterAll(async () => {
    await fs.rm(filler, { force: true });
    await ts?.close();
    await run('umount', [mount]).catch(() => {});
    await fs.rm(mount, { recursive: true, force: true });
  });

  it('authenticates (also keys never used before) and serves recordings while nothing can be written, then writes again', async () => {
    const callId = await readyCall(ts, Buffer.from('the audio'));
    const { secret: fresh } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'fresh',
      scopes: ['recordings:read'],
    });
    await fillDisk(filler);
    // SQLite may still have room in its own files (free pages, a WAL it rewinds): write until
    // it too is full, so that the requests below find nothing writable.
    const writeFailure = await (async () => {
      for (let i = 0; i < 2000; i++) {
        const message = `${i} `.repeat(150);
        try {
          await ts.server.store.agents.patch(
            ts.tenantId,
            `probe-${i}`,
            { voice_tools: { call_recording: { consent_message: message } } },
            null,
          );
        } catch (err) {
          return err;
        }
      }
      return null;
    })();
    // (Kysely's rollback after SQLite's own reports "no transaction is active", hiding SQLITE_FULL.
    // Not `toBeInstanceOf(Error)`: better-sqlite3's errors come from another realm under jest.)
    expect(writeFailure).not.toBeNull();

    const agents = await fetch(`${ts.server.url}/api/agents`, { headers: { authorization: `Bearer ${fresh}` } });
    expect(agents.status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const res = await ts.api(`/api/calls/${callId}/recording`);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).toString()).toBe('the audio');
    }
    expect((await ts.api(`/api/calls/${callId}`)).status).toBe(200);

    await fs.rm(filler);
    const patched = await ts.api('/api/agents/after-space', {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ voice_tools: { call_recording: { enabled: true } } }),
    });
    expect(patched.status).toBe(200);
  });
});
