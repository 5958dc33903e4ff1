import type { Kysely, Selectable } from 'kysely';
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
}
