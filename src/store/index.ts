import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import pg from 'pg';
import { CallrecError } from '../errors.js';
import type { Logger } from '../log.js';
import { AccessLogRepository } from './access-log.js';
import { AgentRepository } from './agents.js';
import { CallRepository } from './calls.js';
import { EvidenceRepository } from './evidence.js';
import type { Dialect } from './dialect.js';
import { KeyRepository } from './keys.js';
import { migrationProvider } from './migrations.js';
import { RecordingRepository } from './recordings.js';
import type { Database } from './schema.js';
import { TenantRepository } from './tenants.js';
import { TombstoneRepository } from './tombstones.js';

export type { Dialect } from './dialect.js';
export type { Tenant } from './tenants.js';
export type { ApiKey, NewApiKey } from './keys.js';
export { OPERATOR_TENANT_ID } from './keys.js';
export type { Agent, AgentAuditEntry } from './agents.js';
export type {
  Call,
  CallAuditEntry,
  CallFilters,
  CallMode,
  CallPage,
  CallPatch,
  CallStatus,
  CallWithRecording,
  JsonObject,
  NewCall,
} from './calls.js';
export type { LostSpan, NewRecording, Recording, RecordingPatch, RecordingStatus } from './recordings.js';
export type { AccessLogEntry, NewAccessLogEntry } from './access-log.js';
export type { DeletionReason, NewTombstone, Tombstone } from './tombstones.js';
export type { LedgerHead, LedgerRow, ManifestRow, SigningKeyRow } from './evidence.js';

/** callrec's database: the same repositories over SQLite or PostgreSQL. */
export interface Store {
  readonly dialect: Dialect;
  readonly tenants: TenantRepository;
  readonly keys: KeyRepository;
  readonly agents: AgentRepository;
  readonly calls: CallRepository;
  readonly recordings: RecordingRepository;
  readonly accessLog: AccessLogRepository;
  readonly tombstones: TombstoneRepository;
  readonly evidence: EvidenceRepository;
  /** Brings the schema up to date (idempotent); rejects `ERR_MIGRATION`. */
  migrate(): Promise<void>;
  /** Whether `migrate` ever ran here: false for a new, empty database (or PostgreSQL schema). */
  migrated(): Promise<boolean>;
  /** Resolves when the database answers a query (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

interface Connection {
  dialect: Dialect;
  db: Kysely<Database>;
  /** PostgreSQL schema holding callrec's tables (`?schema=`), when not the default. */
  schema: string | undefined;
}

/**
 * The database holds wrapped keys and the access log: it is created 0600 before SQLite opens
 * it, and SQLite gives its -wal and -shm files the database file's mode. Files made by an
 * older version are narrowed too.
 */
function createPrivately(file: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      fs.chmodSync(file + suffix, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** The file of a `sqlite://` URL (or `:memory:`). */
export function sqliteFile(databaseUrl: string): string {
  // Not `new URL()`: a relative path (`sqlite://./data/callrec.db`) would parse as a host.
  const file = decodeURIComponent(databaseUrl.replace(/^sqlite:\/\//, '').replace(/\?.*$/, ''));
  if (file === '') throw new CallrecError('ERR_CONFIG', 'DATABASE_URL: sqlite URL has no file path');
  return file;
}

function connectSqlite(databaseUrl: string): Connection {
  const file = sqliteFile(databaseUrl);
  if (file !== ':memory:') createPrivately(file);
  const database = new SqliteDatabase(file);
  // WAL lets readers (API) run beside the writer (workers); busy_timeout makes a second
  // process wait for the write lock instead of failing with SQLITE_BUSY.
  database.pragma('journal_mode = WAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('synchronous = NORMAL');
  return {
    dialect: 'sqlite',
    db: new Kysely<Database>({ dialect: new SqliteDialect({ database }) }),
    schema: undefined,
  };
}

function connectPostgres(databaseUrl: string): Connection {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') ?? undefined;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new CallrecError('ERR_CONFIG', `DATABASE_URL: schema must be a plain identifier, got "${schema}"`);
  }
  // pg does not know `schema`; it is ours, so it is taken off the URL pg sees.
  url.searchParams.delete('schema');
  const pool = new pg.Pool({
    connectionString: url.href,
    // The server applies this at connection start, so no query can run before search_path is set.
    options: schema === undefined ? undefined : `-c search_path=${schema}`,
    // Counts and BIGINT columns come back as strings by default; ours (byte sizes, ms) fit a JS number.
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === pg.types.builtins.INT8
          ? Number
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  return { dialect: 'postgres', db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), schema };
}

/**
 * Connects to `sqlite:///abs/path/callrec.db` or `postgres://…[?schema=name]` and returns the
 * store. Only connects: call `migrate()` to create or update the schema.
 */
export interface StoreOptions {
  /** Where writes the store makes on its own, best-effort, report failures (`last_used_at`); default: nowhere. */
  log?: Pick<Logger, 'warn'>;
}

export async function createStore(databaseUrl: string, opts: StoreOptions = {}): Promise<Store> {
  let connection: Connection;
  if (databaseUrl.startsWith('sqlite:')) connection = connectSqlite(databaseUrl);
  else if (/^postgres(ql)?:/.test(databaseUrl)) connection = connectPostgres(databaseUrl);
  else throw new CallrecError('ERR_CONFIG', 'DATABASE_URL: must start with sqlite:// or postgres://');
  const { db, dialect, schema } = connection;
  const tenants = new TenantRepository(db);
  const keys = new KeyRepository(db, tenants, (err, keyId) =>
    opts.log?.warn({ err, keyId }, 'could not record when an API key was last used'),
  );
  return {
    dialect,
    tenants,
    keys,
    agents: new AgentRepository(db, dialect),
    calls: new CallRepository(db, dialect),
    recordings: new RecordingRepository(db, dialect),
    accessLog: new AccessLogRepository(db),
    tombstones: new TombstoneRepository(db),
    evidence: new EvidenceRepository(db),
    async migrate() {
      if (schema !== undefined) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
      // Kysely finds its bookkeeping table by name across all schemas unless told which one,
      // so a run in one schema would see another schema's migrations as its own.
      const migrator = new Migrator({ db, provider: migrationProvider, migrationTableSchema: schema });
      const { error } = await migrator.migrateToLatest();
      if (error)
        throw new CallrecError('ERR_MIGRATION', `database migration failed: ${(error as Error).message ?? error}`, {
          cause: error,
        });
    },
    async migrated() {
      const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
      return tables.some(
        (t) => t.name === 'kysely_migration' && (dialect === 'sqlite' || t.schema === (schema ?? 'public')),
      );
    },
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await keys.settle();
      await db.destroy();
    },
  };
}
