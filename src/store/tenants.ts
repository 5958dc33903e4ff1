import type { Kysely, Selectable } from 'kysely';
import { CallrecError } from '../errors.js';
import type { Database, TenantsTable } from './schema.js';

export interface Tenant {
  id: string;
  name: string;
  settings: Record<string, unknown>;
  createdAt: string;
}

function toTenant(row: Selectable<TenantsTable>): Tenant {
  return { id: row.id, name: row.name, settings: JSON.parse(row.settings), createdAt: row.created_at };
}

/** Concurrent settings writers retry this often before giving up (each retry means another writer won). */
const MAX_SETTINGS_ATTEMPTS = 10;

export class TenantRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Creates the tenant unless it exists (an existing tenant keeps its name); returns it. */
  async ensure(id: string, name: string): Promise<Tenant> {
    await this.#db
      .insertInto('tenants')
      .values({ id, name, settings: '{}', created_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    return (await this.get(id))!;
  }

  async get(id: string): Promise<Tenant | null> {
    const row = await this.#db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTenant(row) : null;
  }

  /** Every tenant, by id. */
  async list(): Promise<Tenant[]> {
    const rows = await this.#db.selectFrom('tenants').selectAll().orderBy('id').execute();
    return rows.map(toTenant);
  }

  /**
   * Replaces the tenant's settings with `update(current)`; returns the updated tenant, or null
   * when there is no such tenant. `update` may throw to refuse the change. Compare-and-set on
   * the stored text, retried when another writer got in between, so no update is lost on
   * either database without a dialect-specific row lock.
   */
  async updateSettings(
    id: string,
    update: (current: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<Tenant | null> {
    for (let attempt = 0; attempt < MAX_SETTINGS_ATTEMPTS; attempt++) {
      const row = await this.#db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) return null;
      const settings = JSON.stringify(update(JSON.parse(row.settings)));
      const result = await this.#db
        .updateTable('tenants')
        .set({ settings })
        .where('id', '=', id)
        .where('settings', '=', row.settings)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) return toTenant({ ...row, settings });
    }
    throw new CallrecError('ERR_CONFLICT', `tenant ${id}: settings are being changed concurrently, try again`);
  }
}
