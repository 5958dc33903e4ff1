import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { mergeSettings, type AgentSettings } from '../agents/settings.js';
import type { AgentsTable, Database } from './schema.js';
import type { Dialect } from './dialect.js';

export interface Agent {
  tenantId: string;
  id: string;
  /** What PATCHes stored, without defaults; see `resolveCallRecording`. */
  settings: AgentSettings;
  createdAt: string;
  updatedAt: string;
}

/** One PATCH of an agent's settings: who, when, before and after. */
export interface AgentAuditEntry {
  id: string;
  tenantId: string;
  agentId: string;
  /** 1 for the agent's first change, then +1 per change. */
  version: number;
  keyId: string | null;
  at: string;
  before: AgentSettings;
  after: AgentSettings;
}

function toAgent(row: Selectable<AgentsTable>): Agent {
  return {
    tenantId: row.tenant_id,
    id: row.id,
    settings: JSON.parse(row.settings),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class AgentRepository {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  async get(tenantId: string, id: string): Promise<Agent | null> {
    const row = await this.#db
      .selectFrom('agents')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toAgent(row) : null;
  }

  async list(tenantId: string): Promise<Agent[]> {
    const rows = await this.#db
      .selectFrom('agents')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .orderBy('id')
      .execute();
    return rows.map(toAgent);
  }

  /**
   * Deep-merges `patch` into the agent's settings, creating the agent if new, and audits the
   * change, all in one transaction. On PostgreSQL the row is locked while merging so
   * concurrent PATCHes cannot lose each other's fields (SQLite serializes writers already).
   */
  async patch(tenantId: string, id: string, patch: AgentSettings, keyId: string | null): Promise<Agent> {
    return this.#db.transaction().execute(async (trx) => {
      const now = new Date().toISOString();
      await trx
        .insertInto('agents')
        .values({ tenant_id: tenantId, id, settings: '{}', created_at: now, updated_at: now })
        .onConflict((oc) => oc.columns(['tenant_id', 'id']).doNothing())
        .execute();
      const current = await trx
        .selectFrom('agents')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .$if(this.#dialect === 'postgres', (qb) => qb.forUpdate())
        .executeTakeFirstOrThrow();
      const before = JSON.parse(current.settings) as AgentSettings;
      const after = mergeSettings(before, patch);
      const settings = JSON.stringify(after);
      await trx
        .updateTable('agents')
        .set({ settings, updated_at: now })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute();
      const { last } = await trx
        .selectFrom('agent_audit')
        .select((eb) => eb.fn.max('version').as('last'))
        .where('tenant_id', '=', tenantId)
        .where('agent_id', '=', id)
        .executeTakeFirstOrThrow();
      await trx
        .insertInto('agent_audit')
        .values({
          id: randomUUID(),
          tenant_id: tenantId,
          agent_id: id,
          version: (last ?? 0) + 1,
          key_id: keyId,
          at: now,
          before: current.settings,
          after: settings,
        })
        .execute();
      return toAgent({ ...current, settings, updated_at: now });
    });
  }

  /** The agent's settings changes, oldest first. */
  async audit(tenantId: string, agentId: string): Promise<AgentAuditEntry[]> {
    const rows = await this.#db
      .selectFrom('agent_audit')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('agent_id', '=', agentId)
      .orderBy('version')
      .execute();
    return rows.map((row) => ({
      id: row.id,
      tenantId: row.tenant_id,
      agentId: row.agent_id,
      version: row.version,
      keyId: row.key_id,
      at: row.at,
      before: JSON.parse(row.before),
      after: JSON.parse(row.after),
    }));
  }
}
