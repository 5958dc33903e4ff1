/**
 * Row shapes as stored. Only types both SQLite and PostgreSQL hold the same way: TEXT for ids,
 * ISO-8601 UTC timestamps (string order = time order) and JSON; INTEGER/BIGINT read back as
 * JS numbers. Repositories turn these into the camelCase objects the rest of callrec sees.
 */
export interface TenantsTable {
  id: string;
  name: string;
  settings: string;
  created_at: string;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  key_hash: string;
  prefix: string;
  scopes: string;
  operator: number;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  /** JSON `SealedSecret`: the AudioHook client secret its signatures are verified with; null for other keys. */
  audiohook_secret: string | null;
  /** SIPREC digest: the key's HA1s, sealed (JSON); null for a key that does not authenticate SIP. */
  sip_digest: string | null;
}

export interface AgentsTable {
  tenant_id: string;
  id: string;
  settings: string;
  created_at: string;
  updated_at: string;
}

export interface AgentAuditTable {
  id: string;
  tenant_id: string;
  agent_id: string;
  /** 1 for an agent's first change, then +1 per change. */
  version: number;
  key_id: string | null;
  at: string;
  before: string;
  after: string;
}

export interface CallsTable {
  tenant_id: string;
  id: string;
  agent_id: string;
  provider: string;
  mode: string;
  stream_id: string | null;
  node_id: string | null;
  status: string;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
  sample_rate: number;
  legs: string;
  settings: string;
  alignment: string | null;
  consent: string | null;
  pauses: string;
  /** SIPREC: the participants the recording metadata named (JSON array); '[]' otherwise. */
  participants: string;
  /** 1 while the call is on legal hold: its recording may not be deleted. */
  legal_hold: number;
  legal_hold_reason: string | null;
}

/** One administrative change to a call (legal hold): who, when, what, before and after. */
export interface CallAuditTable {
  id: string;
  tenant_id: string;
  call_id: string;
  /** 1 for a call's first change, then +1 per change. */
  version: number;
  key_id: string | null;
  action: string;
  at: string;
  before: string;
  after: string;
}

export interface RecordingsTable {
  id: string;
  tenant_id: string;
  call_id: string;
  status: string;
  format: string;
  channels: number;
  sample_rate: number;
  spool_path: string | null;
  object_key: string | null;
  storage_url: string | null;
  duration_ms: number | null;
  byte_size: number | null;
  sha256: string | null;
  error: string | null;
  attempts: number;
  storage_days: number;
  created_at: string;
  updated_at: string;
  ready_at: string | null;
  deleted_at: string | null;
  key_id: string | null;
  wrapped_key: string | null;
  spool_url: string | null;
  /** 1 or 0. */
  complete: number;
  /** JSON `LostSpan[]`. */
  lost_spans: string;
}

export interface AccessLogTable {
  id: string;
  tenant_id: string;
  key_id: string;
  call_id: string;
  recording_id: string;
  format: string;
  range: string | null;
  ip: string;
  at: string;
}

/** What is left of a deleted recording: which object was removed, by whom, why, when. */
export interface TombstonesTable {
  id: string;
  tenant_id: string;
  call_id: string;
  recording_id: string;
  object_key: string | null;
  /** The API key's id, or `retention`. */
  deleted_by: string;
  reason: string;
  at: string;
}

/** An Ed25519 key that signs manifests and tombstones; `retired_at` set once another is current. */
export interface SigningKeysTable {
  kid: string;
  /** The public JWK (JSON). */
  public_jwk: string;
  /** JSON `SealedSecret` of the PKCS#8 private key (base64), sealed under the master keyring. */
  private_key: string;
  created_at: string;
  retired_at: string | null;
}

/** One entry of a tenant's hash-chained ledger. */
export interface LedgerTable {
  tenant_id: string;
  /** 1 for a tenant's first entry, then +1 per entry. */
  seq: number;
  kind: string;
  /** What the entry is about (a recording id), for finding a recording's entries. */
  ref: string;
  /** The entry, RFC 8785 canonical JSON: what `hash` is the SHA-256 of. */
  entry: string;
  hash: string;
}

/** A recording's signed manifest. */
export interface ManifestsTable {
  recording_id: string;
  tenant_id: string;
  call_id: string;
  /** Compact JWS (EdDSA). */
  jws: string;
  kid: string;
  signed_at: string;
  /** The manifest's ledger entry. */
  ledger_seq: number;
  /** base64 DER of an RFC 3161 time-stamp token over the manifest, once the TSA gave one. */
  tsa_token: string | null;
}

/** A consent prompt's audio exactly as played (wire-encoded), by its SHA-256. */
export interface PromptAudioTable {
  sha256: string;
  /** The wire format, e.g. `pcmu/8000`, `l16be/16000`. */
  format: string;
  /** base64: the same TEXT column on both databases. */
  audio: string;
  created_at: string;
}

export interface Database {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  agents: AgentsTable;
  agent_audit: AgentAuditTable;
  calls: CallsTable;
  recordings: RecordingsTable;
  access_log: AccessLogTable;
  call_audit: CallAuditTable;
  tombstones: TombstonesTable;
  signing_keys: SigningKeysTable;
  ledger: LedgerTable;
  manifests: ManifestsTable;
  prompt_audio: PromptAudioTable;
}
