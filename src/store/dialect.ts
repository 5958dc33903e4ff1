/** The two databases callrec runs on; repositories branch on it only where SQL differs. */
export type Dialect = 'sqlite' | 'postgres';
