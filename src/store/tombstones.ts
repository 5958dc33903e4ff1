import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, TombstonesTable } from './schema.js';

/** Why a recording was deleted. */
export type DeletionReason = 'api' | 'retention';

/** What is kept of a deleted recording: the object that was removed, by whom, why and when. */
export interface Tombstone {
  id: string;
  tenantId: string;
  callId: string;
  recordingId: string;
  objectKey: string | null;
  /** The API key's id, or `retention`. */
  deletedBy: string;
  reason: DeletionReason;
  at: string;
}

export type NewTombstone = Omit<Tombstone, 'id' | 'at'>;

export function toTombstone(row: Selectable<TombstonesTable>): Tombstone {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    callId: row.call_id,
    recordingId: row.recording_id,
    objectKey: row.object_key,
    deletedBy: row.deleted_by,
    reason: row.reason as DeletionReason,
    at: row.at,
  };
}

/** Inserts a tombstone through `db`, which may be a transaction (as `RecordingRepository.delete` uses it). */
export async function insertTombstone(db: Kysely<Database>, input: NewTombstone): Promise<Tombstone> {
  const row: Selectable<TombstonesTable> = {
    id: randomUUID(),
    tenant_id: input.tenantId,
    call_id: input.callId,
    recording_id: input.recordingId,
    object_key: input.objectKey,
    deleted_by: input.deletedBy,
    reason: input.reason,
    at: new Date().toISOString(),
  };
  await db.insertInto('tombstones').values(row).execute();
  return toTombstone(row);
}

export class TombstoneRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async add(input: NewTombstone): Promise<Tombstone> {
    return insertTombstone(this.#db, input);
  }

  /** A call's tombstones, oldest first. */
  async list(tenantId: string, callId: string): Promise<Tombstone[]> {
    const rows = await this.#db
      .selectFrom('tombstones')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('call_id', '=', callId)
      .orderBy('at')
      .orderBy('id')
      .execute();
    return rows.map(toTombstone);
  }
}
