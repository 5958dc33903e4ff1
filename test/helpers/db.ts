import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { createStore, type Store } from '../../src/store/index.js';

export type TestDbKind = 'sqlite' | 'postgres';

/** Both databases every store-backed test runs against. */
export const TEST_DB_KINDS: TestDbKind[] = ['sqlite', 'postgres'];

/** The PostgreSQL server tests use (trust auth); override with `TEST_POSTGRES_URL`. */
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestStore {
  /** A `DATABASE_URL` for this store, for tests that start a server or CLI on it. */
  url: string;
  /** Migrated and ready. */
  store: Store;
  /** Closes the store and removes its database (temp dir or schema). */
  cleanup(): Promise<void>;
}

/** A fresh, migrated store: SQLite in a temp dir, or a PostgreSQL schema of its own. */
export async function createTestStore(kind: TestDbKind): Promise<TestStore> {
  if (kind === 'sqlite') {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-db-'));
    const url = `sqlite://${path.join(dir, 'callrec.db')}`;
    const store = await createStore(url);
    await store.migrate();
    return {
      url,
      store,
      async cleanup() {
        await store.close();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = `${POSTGRES_URL}?schema=${schema}`;
  const store = await createStore(url);
  await store.migrate();
  return {
    url,
    store,
    async cleanup() {
      await store.close();
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Runs SQL on the test database behind callrec's back, as someone with database access would. */
export async function rawSql(databaseUrl: string, text: string): Promise<void> {
  if (databaseUrl.startsWith('sqlite:')) {
    const database = new SqliteDatabase(databaseUrl.replace(/^sqlite:\/\//, ''));
    database.exec(text);
    database.close();
    return;
  }
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema');
  url.searchParams.delete('schema');
  const client = new pg.Client({
    connectionString: url.href,
    options: schema ? `-c search_path=${schema}` : undefined,
  });
  await client.connect();
  await client.query(text);
  await client.end();
}
