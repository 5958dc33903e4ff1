import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createStore } from '../../src/store/index.js';
import { createTestStore } from '../helpers/db.js';

const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

test('SQLite: a new file is not migrated until `migrate` runs', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-migrated-'));
  const store = await createStore(`sqlite://${path.join(dir, 'callrec.db')}`);
  try {
    expect(await store.migrated()).toBe(false);
    await store.migrate();
    expect(await store.migrated()).toBe(true);
  } finally {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('PostgreSQL: a schema is not migrated until `migrate` runs there, whatever other schemas hold', async () => {
  const other = await createTestStore('postgres'); // a migrated schema beside it
  const schema = `test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const store = await createStore(`${POSTGRES_URL}?schema=${schema}`);
  try {
    expect(await other.store.migrated()).toBe(true);
    expect(await store.migrated()).toBe(false);
    await store.migrate();
    expect(await store.migrated()).toBe(true);
  } finally {
    await store.close();
    await other.cleanup();
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`).finally(() => client.end());
  }
});
