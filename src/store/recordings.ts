import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { RecordingFormat } from '../../media/types.js';
import { CallrecError } from '../errors.js';
import { peaksKeyFor } from '../recording/peaks.js';
import type { ObjectStore } from '../storage/types.js';
import { isUniqueViolation, type Dialect } from './dialect.js';
import type { Database, RecordingsTable } from './schema.js';
import { insertTombstone, toTombstone, type DeletionReason, type Tombstone } from './tombstones.js';

/** `deleting`: its deletion is decided (its tombstone written) and its object is being removed; then `deleted`. */
export type RecordingStatus = 'recording' | 'paused' | 'processing' | 'ready' | 'failed' | 'deleting' | 'deleted';

export interface Recording {
  id: string;
  tenantId: string;
  callId: string;
  status: RecordingStatus;
  format: RecordingFormat;
  channels: number;
  sampleRate: number;
  /**
   * The spool file on its media node's disk, kept once the recording is stored: a node finding a
   * file there that a stored recording names knows it is a leftover (finalized elsewhere).
   */
  spoolPath: string | null;
  objectKey: string | null;
  storageUrl: string | null;
  durationMs: number | null;
  byteSize: number | null;
  sha256: string | null;
  error: string | null;
  attempts: number;
  /** The agent's `storage_days` when the call was recorded; retention uses this, not today's value. */
  storageDays: number;
  createdAt: string;
  updatedAt: string;
  readyAt: string | null;
  deletedAt: string | null;
  /** Which key wraps the data key: a master key id, or `tenant:<fingerprint>` for the tenant's own. */
  keyId: string | null;
  /** The recording's data key, wrapped (base64); null for an object stored before encryption. */
  wrappedKey: string | null;
  /** The `SPOOL_URL` the spool is shipped to as the call runs; null: only on its media node's disk. */
  spoolUrl: string | null;
  /** False when audio was lost (`lostSpans` says where). */
  complete: boolean;
  lostSpans: LostSpan[];
}

/** Audio a recording lacks, in recording time. */
export interface LostSpan {
  start_ms: number;
  end_ms: number;
  reason: string;
}

export interface NewRecording {
  tenantId: string;
  callId: string;
  format: RecordingFormat;
  channels: number;
  sampleRate: number;
  storageDays: number;
  status?: RecordingStatus;
  spoolPath?: string | null;
  spoolUrl?: string | null;
}

/** Fields a recording's lifecycle changes; `updatedAt` is set on every update. */
export type RecordingPatch = Partial<
  Pick<
    Recording,
    | 'status'
    | 'spoolPath'
    | 'objectKey'
    | 'storageUrl'
    | 'durationMs'
    | 'byteSize'
    | 'sha256'
    | 'error'
    | 'attempts'
    | 'readyAt'
    | 'deletedAt'
    | 'keyId'
    | 'wrappedKey'
    | 'spoolUrl'
    | 'complete'
    | 'lostSpans'
  >
>;

const COLUMNS = {
  status: 'status',
  spoolPath: 'spool_path',
  objectKey: 'object_key',
  storageUrl: 'storage_url',
  durationMs: 'duration_ms',
  byteSize: 'byte_size',
  sha256: 'sha256',
  error: 'error',
  attempts: 'attempts',
  readyAt: 'ready_at',
  deletedAt: 'deleted_at',
  keyId: 'key_id',
  wrappedKey: 'wrapped_key',
  spoolUrl: 'spool_url',
  complete: 'complete',
  lostSpans: 'lost_spans',
} as const satisfies Record<keyof RecordingPatch, keyof RecordingsTable>;

/** Patch fields stored in another shape than they are read. */
const ENCODE: Partial<Record<keyof RecordingPatch, (value: never) => unknown>> = {
  complete: (value: boolean) => (value ? 1 : 0),
  lostSpans: (value: LostSpan[]) => JSON.stringify(value),
};

export function toRecording(row: Selectable<RecordingsTable>): Recording {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    callId: row.call_id,
    status: row.status as RecordingStatus,
    format: row.format as RecordingFormat,
    channels: row.channels,
    sampleRate: row.sample_rate,
    spoolPath: row.spool_path,
    objectKey: row.object_key,
    storageUrl: row.storage_url,
    durationMs: row.duration_ms,
    byteSize: row.byte_size,
    sha256: row.sha256,
    error: row.error,
    attempts: row.attempts,
    storageDays: row.storage_days,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    readyAt: row.ready_at,
    deletedAt: row.deleted_at,
    keyId: row.key_id,
    wrappedKey: row.wrapped_key,
    spoolUrl: row.spool_url,
    complete: row.complete === 1,
    lostSpans: JSON.parse(row.lost_spans) as LostSpan[],
  };
}

/** Statuses whose recording is still being written: deleting it now would race the writer. */
const IN_PROGRESS: readonly RecordingStatus[] = ['recording', 'paused', 'processing'];

export class RecordingRepository {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  /** Creates the call's recording (one per call: a second create for the same call rejects). */
  async create(input: NewRecording): Promise<Recording> {
    const now = new Date().toISOString();
    const row: Selectable<RecordingsTable> = {
      id: randomUUID(),
      tenant_id: input.tenantId,
      call_id: input.callId,
      status: input.status ?? 'recording',
      format: input.format,
      channels: input.channels,
      sample_rate: input.sampleRate,
      spool_path: input.spoolPath ?? null,
      object_key: null,
      storage_url: null,
      duration_ms: null,
      byte_size: null,
      sha256: null,
      error: null,
      attempts: 0,
      storage_days: input.storageDays,
      created_at: now,
      updated_at: now,
      ready_at: null,
      deleted_at: null,
      key_id: null,
      wrapped_key: null,
      spool_url: input.spoolUrl ?? null,
      complete: 1,
      lost_spans: '[]',
    };
    try {
      await this.#db.insertInto('recordings').values(row).execute();
    } catch (err) {
      if (isUniqueViolation(err))
        throw new CallrecError('ERR_CONFLICT', `${input.tenantId} already has a recording for call ${input.callId}`, {
          cause: err,
        });
      throw err;
    }
    return toRecording(row);
  }

  async get(id: string): Promise<Recording | null> {
    const row = await this.#db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toRecording(row) : null;
  }

  async getByCall(tenantId: string, callId: string): Promise<Recording | null> {
    const row = await this.#db
      .selectFrom('recordings')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('call_id', '=', callId)
      .executeTakeFirst();
    return row ? toRecording(row) : null;
  }

  /** The recording whose spool is (or was) the file `spoolPath`. */
  async getBySpoolPath(spoolPath: string): Promise<Recording | null> {
    const row = await this.#db
      .selectFrom('recordings')
      .selectAll()
      .where('spool_path', '=', spoolPath)
      .executeTakeFirst();
    return row ? toRecording(row) : null;
  }

  /** How many recordings each status has, over all tenants (one grouped query, for `/metrics`). */
  async countByStatus(): Promise<Partial<Record<RecordingStatus, number>>> {
    const rows = await this.#db
      .selectFrom('recordings')
      .select((eb) => ['status', eb.fn.countAll<string | number>().as('count')])
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
  }

  /** Applies `patch`; returns the updated recording, or null when there is none with that id. */
  async update(id: string, patch: RecordingPatch): Promise<Recording | null> {
    const set: Updateable<RecordingsTable> = { updated_at: new Date().toISOString() };
    for (const [field, column] of Object.entries(COLUMNS) as [keyof RecordingPatch, keyof RecordingsTable][]) {
      const value = patch[field];
      if (value !== undefined)
        (set as Record<string, unknown>)[column] = ENCODE[field] ? ENCODE[field](value as never) : value;
    }
    await this.#db.updateTable('recordings').set(set).where('id', '=', id).execute();
    return this.get(id);
  }

  /**
   * Ready recordings past their retention (`created_at` + `storage_days` before `now`) whose
   * call is not on legal hold, oldest first, at most `limit`.
   */
  async listExpired(now: Date, limit: number): Promise<Recording[]> {
    const cutoff = now.toISOString();
    // Each row has its own storage_days, so the cutoff is computed per row, in each database's date arithmetic.
    const expired =
      this.#dialect === 'postgres'
        ? sql<boolean>`cast(r.created_at as timestamptz) + r.storage_days * interval '1 day' < cast(${cutoff} as timestamptz)`
        : sql<boolean>`julianday(r.created_at) + r.storage_days < julianday(${cutoff})`;
    const rows = await this.#db
      .selectFrom('recordings as r')
      .innerJoin('calls as c', (join) => join.onRef('c.tenant_id', '=', 'r.tenant_id').onRef('c.id', '=', 'r.call_id'))
      .selectAll('r')
      .where('r.status', '=', 'ready')
      .where('c.legal_hold', '=', 0)
      .where(expired)
      .orderBy('r.created_at')
      .orderBy('r.id')
      .limit(limit)
      .execute();
    return rows.map(toRecording);
  }

  /**
   * Recordings whose data key is wrapped by a master key other than `keyId` (not the tenants'
   * own public keys), at most `limit`: what a master-key rotation must re-wrap.
   */
  async listWrappedOutside(keyId: string, limit: number): Promise<Recording[]> {
    const rows = await this.#db
      .selectFrom('recordings')
      .selectAll()
      .where('key_id', 'is not', null)
      .where('key_id', '!=', keyId)
      .where('key_id', 'not like', 'tenant:%')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toRecording);
  }

  /**
   * Deletes the call's recording in three steps, none of which holds a transaction open across a
   * remote call (a silent bucket would otherwise hold the database, and with SQLite's one
   * connection every tenant's requests): (1) a transaction that checks the hold and status, marks
   * the recording `deleting` and writes its tombstone; (2) the object (and its peaks) removed from
   * `objects`; (3) the recording marked `deleted`. A hold placed after (1) is refused (see
   * `CallRepository.setLegalHold`), one placed before blocks it. Should (2) fail or the process
   * die, the recording stays `deleting`: deleting it again, or `finishDeletions` (recovery), resumes.
   * Rejects with `ERR_NOT_FOUND` (no such call or recording, or already deleted),
   * `ERR_LEGAL_HOLD` (the call is on hold) or `ERR_CONFLICT` (still being recorded or processed).
   */
  async delete(
    tenantId: string,
    callId: string,
    objects: Pick<ObjectStore, 'delete'>,
    by: { deletedBy: string; reason: DeletionReason },
  ): Promise<{ recording: Recording; tombstone: Tombstone }> {
    const { recording, tombstone } = await this.#markDeleting(tenantId, callId, by);
    return { recording: await this.#finishDeletion(recording, objects), tombstone };
  }

  /**
   * Finishes deletions left `deleting` by a failed object store or a process that died between
   * the steps of `delete`, at least `idleMs` ago (younger ones may still be under way): each
   * one's object is removed from the store `objectsFor` gives and it is marked `deleted`.
   * Returns those finished; one that fails again stays for the next call.
   */
  async finishDeletions(
    objectsFor: (recording: Recording) => Promise<Pick<ObjectStore, 'delete'>>,
    opts: { idleMs: number; onError: (recording: Recording, err: Error) => void },
  ): Promise<Recording[]> {
    const before = new Date(Date.now() - opts.idleMs).toISOString();
    const rows = await this.#db
      .selectFrom('recordings')
      .selectAll()
      .where('status', '=', 'deleting')
      .where('updated_at', '<', before)
      .orderBy('updated_at')
      .limit(100)
      .execute();
    const finished: Recording[] = [];
    for (const recording of rows.map(toRecording)) {
      try {
        finished.push(await this.#finishDeletion(recording, await objectsFor(recording)));
      } catch (err) {
        opts.onError(recording, err as Error);
      }
    }
    return finished;
  }

  /** Step (1) of `delete`; a recording already `deleting` is returned as it is, with its tombstone, to be resumed. */
  async #markDeleting(
    tenantId: string,
    callId: string,
    by: { deletedBy: string; reason: DeletionReason },
  ): Promise<{ recording: Recording; tombstone: Tombstone }> {
    return this.#db.transaction().execute(async (trx) => {
      const forUpdate = this.#dialect === 'postgres';
      const call = await trx
        .selectFrom('calls')
        .select(['legal_hold'])
        .where('tenant_id', '=', tenantId)
        .where('id', '=', callId)
        .$if(forUpdate, (qb) => qb.forUpdate())
        .executeTakeFirst();
      const row = await trx
        .selectFrom('recordings')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('call_id', '=', callId)
        .$if(forUpdate, (qb) => qb.forUpdate())
        .executeTakeFirst();
      if (!call || !row || row.status === 'deleted')
        throw new CallrecError('ERR_NOT_FOUND', `call ${callId} has no recording`);
      if (row.status === 'deleting') {
        const decided = await trx
          .selectFrom('tombstones')
          .selectAll()
          .where('recording_id', '=', row.id)
          .orderBy('at', 'desc')
          .executeTakeFirstOrThrow();
        return { recording: toRecording(row), tombstone: toTombstone(decided) };
      }
      if (call.legal_hold === 1) throw new CallrecError('ERR_LEGAL_HOLD', `call ${callId} is on legal hold`);
      if (IN_PROGRESS.includes(row.status as RecordingStatus)) {
        throw new CallrecError('ERR_CONFLICT', `the recording of call ${callId} is still ${row.status}`);
      }
      const set = { status: 'deleting', updated_at: new Date().toISOString() };
      await trx.updateTable('recordings').set(set).where('id', '=', row.id).execute();
      const tombstone = await insertTombstone(trx, {
        tenantId,
        callId,
        recordingId: row.id,
        objectKey: row.object_key,
        deletedBy: by.deletedBy,
        reason: by.reason,
      });
      return { recording: toRecording({ ...row, ...set }), tombstone };
    });
  }

  /** Steps (2) and (3) of `delete`, outside any transaction. */
  async #finishDeletion(recording: Recording, objects: Pick<ObjectStore, 'delete'>): Promise<Recording> {
    if (recording.objectKey !== null) {
      // Peaks first: should the audio's delete then fail, the recording stays whole but for its waveform.
      await objects.delete(peaksKeyFor(recording.objectKey));
      await objects.delete(recording.objectKey);
    }
    const now = new Date().toISOString();
    await this.#db
      .updateTable('recordings')
      .set({ status: 'deleted', deleted_at: now, updated_at: now })
      .where('id', '=', recording.id)
      .where('status', '=', 'deleting')
      .execute();
    return { ...recording, status: 'deleted', deletedAt: now, updatedAt: now };
  }
}
