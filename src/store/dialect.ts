/** The two databases callrec runs on; repositories branch on it only where SQL differs. */
export type Dialect = 'sqlite' | 'postgres';

/**
 * Whether a driver error is a unique/primary-key violation, on either database: better-sqlite3
 * codes it `SQLITE_CONSTRAINT_PRIMARYKEY`/`_UNIQUE`, PostgreSQL SQLSTATE `23505`.
 */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
