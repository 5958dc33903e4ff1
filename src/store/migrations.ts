import type { Kysely } from 'kysely';
import type { Migration, MigrationProvider } from 'kysely/migration';

// Migrations take Kysely<any> (as Kysely's docs advise): they must keep compiling as the
// current `Database` type moves on past the shape they create.
// biome-ignore lint/suspicious/noExplicitAny: see above.
type Db = Kysely<any>;

const initial: Migration = {
  async up(db: Db) {
    await db.schema
      .createTable('tenants')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('key_hash', 'text', (c) => c.notNull().unique())
      .addColumn('prefix', 'text', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('operator', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_used_at', 'text')
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema.createIndex('api_keys_tenant').on('api_keys').columns(['tenant_id', 'created_at']).execute();

    await db.schema
      .createTable('agents')
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('agents_pk', ['tenant_id', 'id'])
      .execute();

    await db.schema
      .createTable('agent_audit')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('key_id', 'text')
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('before', 'text', (c) => c.notNull())
      .addColumn('after', 'text', (c) => c.notNull())
      // Orders an agent's changes even within one millisecond, and makes a lost update impossible.
      .addUniqueConstraint('agent_audit_version', ['tenant_id', 'agent_id', 'version'])
      .execute();

    await db.schema
      .createTable('calls')
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('provider', 'text', (c) => c.notNull())
      .addColumn('mode', 'text', (c) => c.notNull())
      .addColumn('stream_id', 'text')
      .addColumn('node_id', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('ended_at', 'text')
      .addColumn('end_reason', 'text')
      .addColumn('sample_rate', 'integer', (c) => c.notNull())
      .addColumn('legs', 'text', (c) => c.notNull())
      .addColumn('settings', 'text', (c) => c.notNull())
      .addColumn('alignment', 'text')
      .addColumn('consent', 'text')
      .addColumn('pauses', 'text', (c) => c.notNull().defaultTo('[]'))
      .addPrimaryKeyConstraint('calls_pk', ['tenant_id', 'id'])
      .execute();
    // Call Logs: newest first per tenant, optionally per agent (keyset pagination on started_at, id).
    await db.schema.createIndex('calls_started').on('calls').columns(['tenant_id', 'started_at', 'id']).execute();
    await db.schema
      .createIndex('calls_agent_started')
      .on('calls')
      .columns(['tenant_id', 'agent_id', 'started_at', 'id'])
      .execute();

    await db.schema
      .createTable('recordings')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('call_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('format', 'text', (c) => c.notNull())
      .addColumn('channels', 'integer', (c) => c.notNull())
      .addColumn('sample_rate', 'integer', (c) => c.notNull())
      .addColumn('spool_path', 'text')
      .addColumn('object_key', 'text')
      .addColumn('storage_url', 'text')
      .addColumn('duration_ms', 'bigint')
      .addColumn('byte_size', 'bigint')
      .addColumn('sha256', 'text')
      .addColumn('error', 'text')
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('storage_days', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('ready_at', 'text')
      .addColumn('deleted_at', 'text')
      .addUniqueConstraint('recordings_call', ['tenant_id', 'call_id'])
      .execute();
    // Retention scans ready recordings by age.
    await db.schema.createIndex('recordings_status_ready').on('recordings').columns(['status', 'ready_at']).execute();

    await db.schema
      .createTable('access_log')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('call_id', 'text', (c) => c.notNull())
      .addColumn('recording_id', 'text', (c) => c.notNull())
      .addColumn('format', 'text', (c) => c.notNull())
      .addColumn('range', 'text')
      .addColumn('ip', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('access_log_call').on('access_log').columns(['tenant_id', 'call_id', 'at']).execute();
  },
  async down(db: Db) {
    for (const table of ['access_log', 'recordings', 'calls', 'agent_audit', 'agents', 'api_keys', 'tenants']) {
      await db.schema.dropTable(table).ifExists().execute();
    }
  },
};

/** Issue 5: legal hold on calls, its audit trail, and tombstones for deleted recordings. */
const holdsAndTombstones: Migration = {
  async up(db: Db) {
    await db.schema
      .alterTable('calls')
      .addColumn('legal_hold', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.alterTable('calls').addColumn('legal_hold_reason', 'text').execute();

    await db.schema
      .createTable('call_audit')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('call_id', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('key_id', 'text')
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('before', 'text', (c) => c.notNull())
      .addColumn('after', 'text', (c) => c.notNull())
      // As agent_audit: orders a call's changes within one millisecond and rules out a lost update.
      .addUniqueConstraint('call_audit_version', ['tenant_id', 'call_id', 'version'])
      .execute();

    await db.schema
      .createTable('tombstones')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('call_id', 'text', (c) => c.notNull())
      .addColumn('recording_id', 'text', (c) => c.notNull())
      .addColumn('object_key', 'text')
      .addColumn('deleted_by', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('tombstones_call').on('tombstones').columns(['tenant_id', 'call_id', 'at']).execute();
  },
  async down(db: Db) {
    await db.schema.dropTable('tombstones').ifExists().execute();
    await db.schema.dropTable('call_audit').ifExists().execute();
    await db.schema.alterTable('calls').dropColumn('legal_hold_reason').execute();
    await db.schema.alterTable('calls').dropColumn('legal_hold').execute();
  },
};

/** Issue 5: each recording's data key, wrapped by a master key (or the tenant's public key). */
const recordingKeys: Migration = {
  async up(db: Db) {
    await db.schema.alterTable('recordings').addColumn('key_id', 'text').execute();
    await db.schema.alterTable('recordings').addColumn('wrapped_key', 'text').execute();
  },
  async down(db: Db) {
    await db.schema.alterTable('recordings').dropColumn('wrapped_key').execute();
    await db.schema.alterTable('recordings').dropColumn('key_id').execute();
  },
};

/**
 * Issue 12: where a recording's spool was shipped (null: this node's disk only), and whether the
 * recording is complete, with the spans it lost (a media node that died mid-call).
 */
const sharedSpools: Migration = {
  async up(db: Db) {
    await db.schema.alterTable('recordings').addColumn('spool_url', 'text').execute();
    await db.schema
      .alterTable('recordings')
      .addColumn('complete', 'integer', (c) => c.notNull().defaultTo(1))
      .execute();
    await db.schema
      .alterTable('recordings')
      .addColumn('lost_spans', 'text', (c) => c.notNull().defaultTo('[]'))
      .execute();
  },
  async down(db: Db) {
    for (const column of ['lost_spans', 'complete', 'spool_url'])
      await db.schema.alterTable('recordings').dropColumn(column).execute();
  },
};

/**
 * Evidence (SPEC §9): Ed25519 signing keys (private halves sealed under the master keyring), one
 * signed manifest per recording, and each tenant's hash-chained ledger. `(tenant_id, seq)` is the
 * ledger's primary key, so two nodes appending at once cannot both take the same place.
 */
const evidence: Migration = {
  async up(db: Db) {
    await db.schema
      .createTable('signing_keys')
      .addColumn('kid', 'text', (c) => c.primaryKey())
      .addColumn('public_jwk', 'text', (c) => c.notNull())
      .addColumn('private_key', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('retired_at', 'text')
      .execute();
    await db.schema
      .createTable('ledger')
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('ref', 'text', (c) => c.notNull())
      .addColumn('entry', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('ledger_pk', ['tenant_id', 'seq'])
      .execute();
    await db.schema.createIndex('ledger_ref').on('ledger').columns(['tenant_id', 'ref']).execute();
    await db.schema
      .createTable('manifests')
      .addColumn('recording_id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('call_id', 'text', (c) => c.notNull())
      .addColumn('jws', 'text', (c) => c.notNull())
      .addColumn('kid', 'text', (c) => c.notNull())
      .addColumn('signed_at', 'text', (c) => c.notNull())
      .addColumn('ledger_seq', 'bigint', (c) => c.notNull())
      .addColumn('tsa_token', 'text')
      .execute();
    // Consent prompts as played, by the SHA-256 manifests name: one row per distinct prompt.
    await db.schema
      .createTable('prompt_audio')
      .addColumn('sha256', 'text', (c) => c.primaryKey())
      .addColumn('format', 'text', (c) => c.notNull())
      .addColumn('audio', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Db) {
    for (const table of ['prompt_audio', 'manifests', 'ledger', 'signing_keys'])
      await db.schema.dropTable(table).ifExists().execute();
  },
};

/** Issue 19: an API key's AudioHook client secret, sealed under the master keyring (Genesys signs its upgrades with it). */
const audiohookSecrets: Migration = {
  async up(db: Db) {
    await db.schema.alterTable('api_keys').addColumn('audiohook_secret', 'text').execute();
  },
  async down(db: Db) {
    await db.schema.alterTable('api_keys').dropColumn('audiohook_secret').execute();
  },
};

/**
 * SIPREC digest authentication: a key created for it keeps its HA1s (one per digest
 * algorithm), sealed with the master keyring, since its secret is kept only as a hash.
 */
const sipDigest: Migration = {
  async up(db: Db) {
    await db.schema.alterTable('api_keys').addColumn('sip_digest', 'text').execute();
  },
  async down(db: Db) {
    await db.schema.alterTable('api_keys').dropColumn('sip_digest').execute();
  },
};

/** SIPREC: a call keeps the participants its recording metadata named. */
const callParticipants: Migration = {
  async up(db: Db) {
    await db.schema
      .alterTable('calls')
      .addColumn('participants', 'text', (c) => c.notNull().defaultTo('[]'))
      .execute();
  },
  async down(db: Db) {
    await db.schema.alterTable('calls').dropColumn('participants').execute();
  },
};

/** Every migration, in order; names sort in the order they run. */
export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_holds_and_tombstones': holdsAndTombstones,
  '0003_recording_keys': recordingKeys,
  '0004_shared_spools': sharedSpools,
  '0010_evidence': evidence,
  '0019_audiohook_secrets': audiohookSecrets,
  '0020_sip_digest': sipDigest,
  '0021_call_participants': callParticipants,
};

/** Kysely's provider over the in-code list, so a build ships its migrations without a directory to find. */
export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
