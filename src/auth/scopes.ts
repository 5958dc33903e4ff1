/** What an API key may do (SPEC §3). `admin` implies every other scope within its tenant. */
export const SCOPES = [
  'admin',
  'agents:write',
  'recordings:read',
  'recordings:delete',
  'calls:control',
  'media:stream',
] as const;

export type Scope = (typeof SCOPES)[number];

/** The authenticated caller of a request: which key, for which tenant, allowed what. */
export interface Principal {
  keyId: string;
  tenantId: string;
  scopes: Scope[];
  /** The operator's key (from `CALLREC_API_KEY`): may manage every tenant. */
  operator: boolean;
}

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** True when the principal holds `scope`, directly or through `admin`. */
export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.includes(scope) || principal.scopes.includes('admin');
}

/** The scopes of `requested` that `principal` does not hold: a key cannot hand out more than it has. */
export function scopesBeyond(principal: Principal, requested: readonly Scope[]): Scope[] {
  return requested.filter((scope) => !hasScope(principal, scope));
}
