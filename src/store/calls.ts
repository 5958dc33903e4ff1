import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Leg } from '../../media/types.js';
import type { CallRecordingSettings } from '../agents/settings.js';
import { CallrecError } from '../errors.js';
import { isUniqueViolation, type Dialect } from './dialect.js';
import type { CallAuditTable, CallsTable, Database } from './schema.js';
import { toRecording, type Recording, type RecordingStatus } from './recordings.js';

export type CallMode = 'fork' | 'bridge';
export type CallStatus = 'live' | 'ended';

/** A JSON object another module owns the shape of (consent record, alignment figures, pause spans); stored verbatim. */
export type JsonObject = Record<string, unknown>;

export interface Call {
  tenantId: string;
  id: string;
  agentId: string;
  provider: string;
  mode: CallMode;
  streamId: string | null;
  /** The media node holding the live call (cross-node control). */
  nodeId: string | null;
  status: CallStatus;
  startedAt: string;
  endedAt: string | null;
  endReason: string | null;
  sampleRate: number;
  legs: Leg[];
  /** The agent's recording settings as they were when the call started. */
  settings: CallRecordingSettings;
  alignment: JsonObject | null;
  consent: JsonObject | null;
  pauses: JsonObject[];
  /** SIPREC: the participants the recording metadata named (`id`, `aor`, `name`, `leg`). */
  participants: JsonObject[];
  /** While true the call's recording may not be deleted, by the API or by retention. */
  legalHold: boolean;
  legalHoldReason: string | null;
}

/** One administrative change to a call: who (key id), when, what, and the state before and after. */
export interface CallAuditEntry {
  id: string;
  tenantId: string;
  callId: string;
  /** 1 for the call's first change, then +1 per change. */
  version: number;
  keyId: string | null;
  action: 'legal_hold';
  at: string;
  before: JsonObject;
  after: JsonObject;
}

export interface NewCall {
  tenantId: string;
  id: string;
  agentId: string;
  provider: string;
  mode: CallMode;
  sampleRate: number;
  legs: Leg[];
  settings: CallRecordingSettings;
  streamId?: string | null;
  nodeId?: string | null;
  participants?: JsonObject[];
  /** Defaults to now. */
  startedAt?: string;
}

export type CallPatch = Partial<
  Pick<
    Call,
    'status' | 'endedAt' | 'endReason' | 'streamId' | 'nodeId' | 'alignment' | 'consent' | 'pauses' | 'participants'
  >
>;

export interface CallFilters {
  agentId?: string;
  /** ISO-8601; calls started at or after it. */
  from?: string;
  /** ISO-8601; calls started before it. */
  to?: string;
  /** The call's recording status; `none` = the call has no recording. */
  status?: RecordingStatus | 'none';
  /** Whether the call has a recording that is not deleted. */
  hasRecording?: boolean;
}

export interface CallWithRecording {
  call: Call;
  recording: Recording | null;
}

export interface CallPage {
  items: CallWithRecording[];
  /** Pass back to `list` for the next page; null on the last page. */
  nextCursor: string | null;
}

function toCall(row: Selectable<CallsTable>): Call {
  return {
    tenantId: row.tenant_id,
    id: row.id,
    agentId: row.agent_id,
    provider: row.provider,
    mode: row.mode as CallMode,
    streamId: row.stream_id,
    nodeId: row.node_id,
    status: row.status as CallStatus,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    endReason: row.end_reason,
    sampleRate: row.sample_rate,
    legs: JSON.parse(row.legs),
    settings: JSON.parse(row.settings),
    alignment: row.alignment === null ? null : JSON.parse(row.alignment),
    consent: row.consent === null ? null : JSON.parse(row.consent),
    pauses: JSON.parse(row.pauses),
    participants: JSON.parse(row.participants),
    legalHold: row.legal_hold === 1,
    legalHoldReason: row.legal_hold_reason,
  };
}

function toAuditEntry(row: Selectable<CallAuditTable>): CallAuditEntry {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    callId: row.call_id,
    version: row.version,
    keyId: row.key_id,
    action: row.action as CallAuditEntry['action'],
    at: row.at,
    before: JSON.parse(row.before),
    after: JSON.parse(row.after),
  };
}

/** The cursor is the last row's sort key; opaque to clients so the key can change. */
function encodeCursor(call: Call): string {
  return Buffer.from(JSON.stringify([call.startedAt, call.id])).toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === 2 && typeof key[0] === 'string' && typeof key[1] === 'string')
      return [key[0], key[1]];
  } catch {
    // fall through: not JSON
  }
  throw new CallrecError('ERR_INVALID_CURSOR', 'cursor is not one this API returned');
}

export class CallRepository {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  /** Records a new live call. Rejects if the tenant already has a call with that id. */
  async create(input: NewCall): Promise<Call> {
    const row: Selectable<CallsTable> = {
      tenant_id: input.tenantId,
      id: input.id,
      agent_id: input.agentId,
      provider: input.provider,
      mode: input.mode,
      stream_id: input.streamId ?? null,
      node_id: input.nodeId ?? null,
      status: 'live',
      started_at: input.startedAt ?? new Date().toISOString(),
      ended_at: null,
      end_reason: null,
      sample_rate: input.sampleRate,
      legs: JSON.stringify(input.legs),
      settings: JSON.stringify(input.settings),
      alignment: null,
      consent: null,
      pauses: '[]',
      participants: JSON.stringify(input.participants ?? []),
      legal_hold: 0,
      legal_hold_reason: null,
    };
    try {
      await this.#db.insertInto('calls').values(row).execute();
    } catch (err) {
      if (isUniqueViolation(err))
        throw new CallrecError('ERR_CONFLICT', `${input.tenantId} already has a call for call ${input.id}`, {
          cause: err,
        });
      throw err;
    }
    return toCall(row);
  }

  async get(tenantId: string, id: string): Promise<Call | null> {
    const row = await this.#db
      .selectFrom('calls')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toCall(row) : null;
  }

  /** Applies `patch`; returns the updated call, or null when the tenant has no such call. */
  async update(tenantId: string, id: string, patch: CallPatch): Promise<Call | null> {
    const set: Partial<CallsTable> = {};
    if (patch.status !== undefined) set.status = patch.status;
    if (patch.endedAt !== undefined) set.ended_at = patch.endedAt;
    if (patch.endReason !== undefined) set.end_reason = patch.endReason;
    if (patch.streamId !== undefined) set.stream_id = patch.streamId;
    if (patch.nodeId !== undefined) set.node_id = patch.nodeId;
    if (patch.alignment !== undefined)
      set.alignment = patch.alignment === null ? null : JSON.stringify(patch.alignment);
    if (patch.consent !== undefined) set.consent = patch.consent === null ? null : JSON.stringify(patch.consent);
    if (patch.pauses !== undefined) set.pauses = JSON.stringify(patch.pauses);
    if (patch.participants !== undefined) set.participants = JSON.stringify(patch.participants);
    if (Object.keys(set).length > 0) {
      await this.#db.updateTable('calls').set(set).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
    }
    return this.get(tenantId, id);
  }

  /**
   * Places (`hold` true) or releases the call's legal hold and audits the change, in one
   * transaction; every request is audited, a repeated one included, since each is a decision
   * someone made. `reason` is kept on the call while it is held. Returns null when the tenant
   * has no such call; rejects `ERR_CONFLICT` placing a hold on a call whose recording is
   * `deleting`. On PostgreSQL the call row stays locked until commit, so a concurrent
   * `RecordingRepository.delete` sees the hold or marks its recording `deleting` before it.
   */
  async setLegalHold(
    tenantId: string,
    id: string,
    hold: boolean,
    reason: string,
    keyId: string | null,
  ): Promise<Call | null> {
    return this.#db.transaction().execute(async (trx) => {
      const current = await trx
        .selectFrom('calls')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .$if(this.#dialect === 'postgres', (qb) => qb.forUpdate())
        .executeTakeFirst();
      if (!current) return null;
      if (hold) {
        // Its deletion is decided and under way (the object may be gone already): too late to hold.
        const deleting = await trx
          .selectFrom('recordings')
          .select('id')
          .where('tenant_id', '=', tenantId)
          .where('call_id', '=', id)
          .where('status', '=', 'deleting')
          .executeTakeFirst();
        if (deleting) throw new CallrecError('ERR_CONFLICT', `the recording of call ${id} is being deleted`);
      }
      const at = new Date().toISOString();
      const set = { legal_hold: hold ? 1 : 0, legal_hold_reason: hold ? reason : null };
      await trx.updateTable('calls').set(set).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
      const { last } = await trx
        .selectFrom('call_audit')
        .select((eb) => eb.fn.max('version').as('last'))
        .where('tenant_id', '=', tenantId)
        .where('call_id', '=', id)
        .executeTakeFirstOrThrow();
      await trx
        .insertInto('call_audit')
        .values({
          id: randomUUID(),
          tenant_id: tenantId,
          call_id: id,
          version: (last ?? 0) + 1,
          key_id: keyId,
          action: 'legal_hold',
          at,
          before: JSON.stringify({ legal_hold: current.legal_hold === 1, reason: current.legal_hold_reason }),
          after: JSON.stringify({ legal_hold: hold, reason }),
        })
        .execute();
      return toCall({ ...current, ...set });
    });
  }

  /** The call's administrative changes, oldest first. */
  async audit(tenantId: string, id: string): Promise<CallAuditEntry[]> {
    const rows = await this.#db
      .selectFrom('call_audit')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('call_id', '=', id)
      .orderBy('version')
      .execute();
    return rows.map(toAuditEntry);
  }

  /**
   * Call Logs: the tenant's calls newest first (by `started_at`, then id), with their
   * recordings, `limit` per page. Rejects `ERR_INVALID_CURSOR` for a cursor it did not issue.
   */
  async list(tenantId: string, filters: CallFilters, cursor: string | undefined, limit: number): Promise<CallPage> {
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const rows = await this.#db
      .selectFrom('calls as c')
      .leftJoin('recordings as r', (join) =>
        join.onRef('r.tenant_id', '=', 'c.tenant_id').onRef('r.call_id', '=', 'c.id'),
      )
      .selectAll('c')
      .where('c.tenant_id', '=', tenantId)
      .$if(filters.agentId !== undefined, (qb) => qb.where('c.agent_id', '=', filters.agentId!))
      .$if(filters.from !== undefined, (qb) => qb.where('c.started_at', '>=', filters.from!))
      .$if(filters.to !== undefined, (qb) => qb.where('c.started_at', '<', filters.to!))
      .$if(filters.status === 'none', (qb) => qb.where('r.id', 'is', null))
      .$if(filters.status !== undefined && filters.status !== 'none', (qb) =>
        qb.where('r.status', '=', filters.status!),
      )
      .$if(filters.hasRecording === true, (qb) => qb.where('r.id', 'is not', null).where('r.status', '<>', 'deleted'))
      .$if(filters.hasRecording === false, (qb) =>
        qb.where((eb) => eb.or([eb('r.id', 'is', null), eb('r.status', '=', 'deleted')])),
      )
      .$if(after !== undefined, (qb) =>
        qb.where((eb) =>
          eb.or([
            eb('c.started_at', '<', after![0]),
            eb.and([eb('c.started_at', '=', after![0]), eb('c.id', '<', after![1])]),
          ]),
        ),
      )
      .orderBy('c.started_at', 'desc')
      .orderBy('c.id', 'desc')
      .limit(limit + 1)
      .execute();
    const calls = rows.slice(0, limit).map(toCall);
    const recordings = new Map<string, Recording>();
    if (calls.length > 0) {
      const recordingRows = await this.#db
        .selectFrom('recordings')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where(
          'call_id',
          'in',
          calls.map((call) => call.id),
        )
        .execute();
      for (const row of recordingRows) recordings.set(row.call_id, toRecording(row));
    }
    return {
      items: calls.map((call) => ({ call, recording: recordings.get(call.id) ?? null })),
      nextCursor: rows.length > limit ? encodeCursor(calls[calls.length - 1]) : null,
    };
  }
}
