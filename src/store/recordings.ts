import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable, Updateable } from 'kysely';
import type { RecordingFormat } from '../../media/types.js';
import { CallrecError } from '../errors.js';
import { isUniqueViolation } from './dialect.js';
import type { Database, RecordingsTable } from './schema.js';

export type RecordingStatus = 'recording' | 'paused' | 'processing' | 'ready' | 'failed' | 'deleted';

export interface Recording {
  id: string;
  tenantId: string;
  callId: string;
  status: RecordingStatus;
  format: RecordingFormat;
  channels: number;
  sampleRate: number;
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
}

/** Fields a recording's lifecycle changes; `updatedAt` is set on every update. */
export type RecordingPatch = Partial<
  Pick<
    Recording,
    'status' | 'spoolPath' | 'objectKey' | 'storageUrl' | 'durationMs' | 'byteSize' | 'sha256' | 'error' | 'attempts' | 'readyAt' | 'deletedAt'
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
} as const satisfies Record<keyof RecordingPatch, keyof RecordingsTable>;

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
  };
}

export class RecordingRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
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
    };
    try {
      await this.#db.insertInto('recordings').values(row).execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new CallrecError('ERR_CONFLICT', `${input.tenantId} already has a recording for call ${input.callId}`, { cause: err });
      throw err;
    }
    return toRecording(row);
  }

  async get(id: string): Promise<Recording | null> {
    const row = await this.#db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toRecording(row) : null;
  }

  async getByCall(tenantId: string, callId: string): Promise<Recording | null> {
    const row = await this.#db.selectFrom('recordings').selectAll().where('tenant_id', '=', tenantId).where('call_id', '=', callId).executeTakeFirst();
    return row ? toRecording(row) : null;
  }

  /** Applies `patch`; returns the updated recording, or null when there is none with that id. */
  async update(id: string, patch: RecordingPatch): Promise<Recording | null> {
    const set: Updateable<RecordingsTable> = { updated_at: new Date().toISOString() };
    for (const [field, column] of Object.entries(COLUMNS) as [keyof RecordingPatch, keyof RecordingsTable][]) {
      if (patch[field] !== undefined) (set as Record<string, unknown>)[column] = patch[field];
    }
    await this.#db.updateTable('recordings').set(set).where('id', '=', id).execute();
    return this.get(id);
  }
}
