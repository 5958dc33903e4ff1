import type { Kysely, Selectable } from 'kysely';
import { isUniqueViolation } from './dialect.js';
import type { Database, LedgerTable, ManifestsTable, SigningKeysTable } from './schema.js';

export type SigningKeyRow = Selectable<SigningKeysTable>;
export type LedgerRow = Selectable<LedgerTable>;
export type ManifestRow = Selectable<ManifestsTable>;

/** The last entry of a tenant's ledger, or null for an empty one. */
export type LedgerHead = Pick<LedgerRow, 'seq' | 'hash'> | null;

/** What `append` asks of its caller: the row for the next place, made from the current head. */
export type NextEntry<T> = (
  head: LedgerHead,
) => Promise<{ row: Omit<LedgerRow, 'tenant_id' | 'seq'>; manifest?: Omit<ManifestRow, 'ledger_seq'>; result: T }>;

/** Attempts at appending before giving up: each retry follows another node's append, so this only runs out under absurd contention. */
const APPEND_ATTEMPTS = 50;

/** Signing keys, manifests and the per-tenant ledger (SPEC §9). Holds no key material in the clear. */
export class EvidenceRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async signingKeys(): Promise<SigningKeyRow[]> {
    return this.#db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
  }

  /** Adds `key` as the current signing key and retires the others, in one transaction. */
  async addSigningKey(key: Omit<SigningKeyRow, 'retired_at'>): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .updateTable('signing_keys')
        .set({ retired_at: key.created_at })
        .where('retired_at', 'is', null)
        .execute();
      await trx
        .insertInto('signing_keys')
        .values({ ...key, retired_at: null })
        .execute();
    });
  }

  /**
   * Appends one entry at the end of `tenantId`'s ledger (and the manifest it carries, in the same
   * transaction). The place is taken by the primary key: when another node took it first, the
   * insert fails and `next` is asked again with the new head, so the chain never forks.
   * `once`: a recording whose manifest this is; if it has one already (another node's retry won),
   * nothing is appended and the result is null.
   */
  async append<T>(tenantId: string, next: NextEntry<T>, once?: { manifestOf: string }): Promise<T | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#db.transaction().execute(async (trx) => {
          if (
            once &&
            (await trx
              .selectFrom('manifests')
              .select('recording_id')
              .where('recording_id', '=', once.manifestOf)
              .executeTakeFirst())
          )
            return null;
          const head =
            (await trx
              .selectFrom('ledger')
              .select(['seq', 'hash'])
              .where('tenant_id', '=', tenantId)
              .orderBy('seq', 'desc')
              .limit(1)
              .executeTakeFirst()) ?? null;
          const { row, manifest, result } = await next(head);
          const seq = (head?.seq ?? 0) + 1;
          await trx
            .insertInto('ledger')
            .values({ ...row, tenant_id: tenantId, seq })
            .execute();
          if (manifest)
            await trx
              .insertInto('manifests')
              .values({ ...manifest, ledger_seq: seq })
              .execute();
          return result;
        });
      } catch (err) {
        // SQLITE_BUSY(_SNAPSHOT): another process's append took the write lock, or committed, after this one read the head.
        const raced = isUniqueViolation(err) || String((err as { code?: string }).code).startsWith('SQLITE_BUSY');
        if (!raced || attempt >= APPEND_ATTEMPTS) throw err;
      }
    }
  }

  async manifest(recordingId: string): Promise<ManifestRow | undefined> {
    return this.#db.selectFrom('manifests').selectAll().where('recording_id', '=', recordingId).executeTakeFirst();
  }

  async setTimestampToken(recordingId: string, token: string): Promise<void> {
    await this.#db
      .updateTable('manifests')
      .set({ tsa_token: token })
      .where('recording_id', '=', recordingId)
      .where('tsa_token', 'is', null)
      .execute();
  }

  /** Manifests still waiting for a time-stamp token, oldest first. */
  async unstamped(limit: number): Promise<ManifestRow[]> {
    return this.#db
      .selectFrom('manifests')
      .selectAll()
      .where('tsa_token', 'is', null)
      .orderBy('signed_at')
      .limit(limit)
      .execute();
  }

  /** A tenant's entries about one recording, in order. */
  async entriesFor(tenantId: string, ref: string): Promise<LedgerRow[]> {
    return this.#db
      .selectFrom('ledger')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('ref', '=', ref)
      .orderBy('seq')
      .execute();
  }

  /** One entry, for the extract that proves another's place (the one before it). */
  async entry(tenantId: string, seq: number): Promise<LedgerRow | undefined> {
    return this.#db
      .selectFrom('ledger')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('seq', '=', seq)
      .executeTakeFirst();
  }

  /** Tenants that have a ledger. */
  async ledgerTenants(): Promise<string[]> {
    const rows = await this.#db.selectFrom('ledger').select('tenant_id').distinct().orderBy('tenant_id').execute();
    return rows.map((row) => row.tenant_id);
  }

  /** A tenant's ledger in order, `pageSize` entries at a time, so a long one is walked in bounded memory. */
  async *ledger(tenantId: string, pageSize = 5000): AsyncGenerator<LedgerRow[]> {
    let after = 0;
    for (;;) {
      const page = await this.#db
        .selectFrom('ledger')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('seq', '>', after)
        .orderBy('seq')
        .limit(pageSize)
        .execute();
      if (page.length === 0) return;
      yield page;
      after = page[page.length - 1].seq;
    }
  }

  /** Every manifest of a tenant by its ledger place, for checking them against the chain. */
  async manifestsBySeq(tenantId: string): Promise<Map<number, ManifestRow>> {
    const rows = await this.#db.selectFrom('manifests').selectAll().where('tenant_id', '=', tenantId).execute();
    return new Map(rows.map((row) => [row.ledger_seq, row]));
  }

  /** Keeps a prompt's audio under its hash; a prompt kept already is left as it is. */
  async keepPromptAudio(sha256: string, format: string, audio: Buffer): Promise<void> {
    await this.#db
      .insertInto('prompt_audio')
      .values({ sha256, format, audio: audio.toString('base64'), created_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('sha256').doNothing())
      .execute();
  }

  async promptAudio(sha256: string): Promise<{ format: string; audio: Buffer } | undefined> {
    const row = await this.#db
      .selectFrom('prompt_audio')
      .select(['format', 'audio'])
      .where('sha256', '=', sha256)
      .executeTakeFirst();
    return row && { format: row.format, audio: Buffer.from(row.audio, 'base64') };
  }

  /** A tenant's recordings, id and status only: what the ledger is checked against. */
  async recordingStates(tenantId: string): Promise<Array<{ id: string; status: string }>> {
    return this.#db.selectFrom('recordings').select(['id', 'status']).where('tenant_id', '=', tenantId).execute();
  }

  /** Ready recordings finalized before manifests existed (or whose signing failed), oldest first; `readySince` bounds the scan to recent ones. */
  async unsignedRecordings(limit: number, readySince?: string): Promise<Array<{ id: string; tenant_id: string }>> {
    return this.#db
      .selectFrom('recordings')
      .leftJoin('manifests', 'manifests.recording_id', 'recordings.id')
      .select(['recordings.id', 'recordings.tenant_id'])
      .where('recordings.status', '=', 'ready')
      .$if(readySince !== undefined, (qb) => qb.where('recordings.ready_at', '>=', readySince!))
      .where('manifests.recording_id', 'is', null)
      .orderBy('recordings.ready_at')
      .limit(limit)
      .execute();
  }
}
