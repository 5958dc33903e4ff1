import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { RecordingFormat } from '../../media/types.js';
import type { Database } from './schema.js';

/** One stream or download of a recording: who, when, what part, in which format. */
export interface AccessLogEntry {
  id: string;
  tenantId: string;
  keyId: string;
  callId: string;
  recordingId: string;
  format: RecordingFormat;
  /** The `Range` header served, or null for the whole file. */
  range: string | null;
  ip: string;
  at: string;
}

export type NewAccessLogEntry = Omit<AccessLogEntry, 'id' | 'at'>;

export class AccessLogRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async add(entry: NewAccessLogEntry): Promise<void> {
    await this.#db
      .insertInto('access_log')
      .values({
        id: randomUUID(),
        tenant_id: entry.tenantId,
        key_id: entry.keyId,
        call_id: entry.callId,
        recording_id: entry.recordingId,
        format: entry.format,
        range: entry.range,
        ip: entry.ip,
        at: new Date().toISOString(),
      })
      .execute();
  }

  /** A call's access log, oldest first. */
  async list(tenantId: string, callId: string): Promise<AccessLogEntry[]> {
    const rows = await this.#db
      .selectFrom('access_log')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('call_id', '=', callId)
      .orderBy('at')
      .orderBy('id')
      .execute();
    return rows.map((row) => ({
      id: row.id,
      tenantId: row.tenant_id,
      keyId: row.key_id,
      callId: row.call_id,
      recordingId: row.recording_id,
      format: row.format as RecordingFormat,
      range: row.range,
      ip: row.ip,
      at: row.at,
    }));
  }
}
