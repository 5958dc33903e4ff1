import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { createStore } from '../../src/store/index.js';

describe('files at rest are private', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-modes-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  const modeOf = async (file: string) => (await fs.stat(file)).mode & 0o777;

  it('creates the SQLite database and its -wal and -shm files 0600, whatever the umask', async () => {
    const before = process.umask(0o002);
    try {
      const file = path.join(dir, 'callrec.db');
      const store = await createStore(`sqlite://${file}`);
      await store.migrate();
      await store.tenants.ensure('t1', 'One');
      for (const suffix of ['', '-wal', '-shm']) expect([suffix, await modeOf(file + suffix)]).toEqual([suffix, 0o600]);
      await store.close();
    } finally {
      process.umask(before);
    }
  });

  it('narrows a database an older version left 0644', async () => {
    const file = path.join(dir, 'old.db');
    await fs.writeFile(file, '', { mode: 0o644 });
    await fs.chmod(file, 0o644);
    const store = await createStore(`sqlite://${file}`);
    await store.migrate();
    expect(await modeOf(file)).toBe(0o600);
    await store.close();
  });

  it('keeps a generated master key 0600', async () => {
    await MasterKeyring.load({ dataDir: dir });
    expect(await modeOf(path.join(dir, 'master.key'))).toBe(0o600);
  });
});
