import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { FLITE_VOICES } from './consent/tts/flite.js';
import { FLITE_POOL_DEFAULTS, type FlitePoolLimits } from './consent/tts/flite-pool.js';
import { CallrecError } from './errors.js';
import type { SipListen } from './sip/transport.js';
import { withScheme } from './user-url.js';

/** Everything callrec reads from its environment, validated (SPEC §2). */
export interface Config {
  port: number;
  host: string;
  /** `callrec worker`'s HTTP listener (`/healthz`, `/readyz`, `/metrics`), on `host`. */
  workerPort: number;
  /** A media node's internal listener for `/readyz` and `/metrics` (and `/healthz`), on `host`; unset: the API port serves them. */
  metricsPort: number | undefined;
  dataDir: string;
  databaseUrl: string;
  redisUrl: string;
  /** `REDIS_URL` is unset: `callrec serve` starts a private `redis-server` when nothing answers at `redisUrl`. */
  redisUrlDefault: boolean;
  /** BullMQ key prefix, so several deployments (or test runs) share one Redis without colliding. */
  queuePrefix: string;
  storageUrl: string;
  storageEndpoint: string | undefined;
  masterKey: string | undefined;
  apiKey: string | undefined;
  ttsEngine: string;
  publicUrl: string;
  logLevel: string;
  /** `LOG_FORMAT`: `auto` (pretty on a terminal, else JSON lines), `json` or `pretty`. */
  logFormat: 'auto' | 'json' | 'pretty';
  /** Addresses/CIDRs whose `X-Forwarded-For` is believed; empty: the TCP peer is the client. */
  trustProxy: string[];
  http: HttpLimits;
  streams: StreamLimits;
  /** Flite's worker threads and queue (FLITE_WORKERS, FLITE_QUEUE_MAX, FLITE_QUEUE_WAIT_SECONDS). */
  flite: FlitePoolLimits;
  /** Distinct consent prompt texts one tenant may have synthesized per hour on a node (CONSENT_PROMPTS_PER_TENANT_PER_HOUR). */
  promptsPerTenantPerHour: number;
  transcodes: TranscodeLimits;
  /** How often every node sweeps for recordings a dead node (or worker) left half-way. */
  recoveryIntervalMs: number;
  /** Where spools are shipped as calls run, so any worker can finalize them (stateless media nodes); unset: local only. */
  spoolUrl: string | undefined;
  /** Seconds of audio per shipped spool segment: at most this much (plus a second) is lost with a node. */
  spoolSegmentSeconds: number;
  /** Telnyx credentials for the dashboard's test call; undefined when not configured. */
  telnyx: TelnyxConfig | undefined;
  /** On SIGTERM, how long live calls may run on before they are ended (and finalized). */
  drainTimeoutMs: number;
  /** A recording or retention job running longer than this fails and is retried. */
  jobTimeLimitMs: number;
  /** SIPREC (SPEC §4b); undefined when `SIP_LISTEN` is unset. */
  sip: SipConfig | undefined;
  /** RFC 3161 time-stamping authority for manifests (SPEC §9); undefined: none. */
  tsaUrl: string | undefined;
  /** How long one time-stamp request may take before the manifest stays pending for the next pass. */
  tsaTimeoutMs: number;
  /** `EGRESS_ALLOW`: CIDRs, addresses or host names tenants and streams may reach though they are internal (docs/security.md "Egress"). */
  egressAllow: string[];
  remoteTimeouts: RemoteTimeouts;
}

/** How long a remote call (object store, webhook, runtime) may take: README "Limits". */
export interface RemoteTimeouts {
  /** Connecting (TCP and TLS, or a runtime's WebSocket handshake). */
  connectMs: number;
  /** A request without an answer (S3: without a byte; webhooks and GCS: in all). */
  requestMs: number;
}

/** Recording and retention jobs that run past this fail (`JOB_TIME_LIMIT_SECONDS`): hours of audio encode in minutes. */
export const JOB_TIME_LIMIT_DEFAULT_MS = 30 * 60_000;

export const REMOTE_TIMEOUT_DEFAULTS: RemoteTimeouts = { connectMs: 5_000, requestMs: 30_000 };

/** The SIPREC recording server's listeners and media addresses. */
export interface SipConfig {
  /** `SIP_LISTEN`: `udp:127.0.0.1:5060,tcp:127.0.0.1:5060,tls:127.0.0.1:5061`. */
  listen: SipListen[];
  /** `SIP_TLS_CERT`, `SIP_TLS_KEY`: the PEM certificate chain and key of the `tls:` listeners, read at start; undefined without one. */
  tls: { cert: string; key: string } | undefined;
  /** `SIP_PUBLIC_ADDRESS`: the address put in Contact and the SDP answer; default: the first listener's host. */
  publicAddress: string;
  /** `RTP_PORTS`: `first-last`, the UDP ports RTP streams are received on (one even port each). */
  rtpPorts: { first: number; last: number };
  /** `SIP_MIN_SE`: the shortest session interval (s) a recording session may ask for (RFC 4028 `Min-SE`). */
  minSessionExpires: number;
}

/** What the dashboard's browser test call needs from Telnyx (`TELNYX_*`). */
export interface TelnyxConfig {
  apiKey: string;
  /** A telephony credential's id: login tokens are minted for it. */
  credentialId: string;
  /** What the browser dials: a number whose calls stream to this server. */
  testNumber: string;
  /** Telnyx's API base (tests point it at a local stand-in). */
  apiUrl: string;
}

/** Per-node limits on the HTTP API (README "Limits"). */
export interface HttpLimits {
  /** Requests one API key may make per minute. */
  requestsPerKeyPerMinute: number;
  /** Failed authentications one client address may make per minute before it is answered 429. */
  authFailuresPerIpPerMinute: number;
}

/** Concurrent `?format=` transcodes on a node (MAX_TRANSCODES, MAX_TRANSCODES_PER_TENANT). */
export interface TranscodeLimits {
  perNode: number;
  perTenant: number;
}

export const TRANSCODE_LIMIT_DEFAULTS: TranscodeLimits = { perNode: 4, perTenant: 2 };

/** Per-node limits on the media endpoints (README "Limits"). */
export interface StreamLimits {
  /** A socket without a valid `start` by then is closed 1008 `ERR_AUTH_TIMEOUT`. */
  authTimeoutMs: number;
  /** Messages (and their bytes) a stream may have held before it is live: before `start`, and during set-up. */
  preStartMessages: number;
  preStartBytes: number;
  /** Provider sockets open on this node; the upgrade past it is answered 503. */
  perNode: number;
  /** Sockets of one client address that have not yet authenticated; the upgrade past it is answered 429. */
  pendingPerAddress: number;
  /** Live streams of one tenant across the cluster; the claim past it is closed 1013. Null: no cap (one tenant may use every node). */
  perTenant: number | null;
  /** A live stream without a media frame this long is ended (its recording finalized). */
  idleTimeoutMs: number;
  /** How far a stream's audio may run ahead of the wall clock since it started; frames beyond are dropped. */
  audioLeadMs: number;
  /** Bridge mode: what may wait for a side that does not read, each direction. */
  relay: RelayLimits;
}

/** What one direction of a bridged call may hold for a side that does not read (BRIDGE_RELAY_*). */
export interface RelayLimits {
  /** Past this many bytes waiting for the side, the other side's socket is paused until they are written. */
  highWaterBytes: number;
  /** Past this many the stream is closed 1008 `ERR_RELAY_OVERFLOW`; also the runtime's largest message. */
  maxBytes: number;
}

export const STREAM_LIMIT_DEFAULTS: StreamLimits = {
  authTimeoutMs: 5_000,
  preStartMessages: 256,
  preStartBytes: 256 * 1024,
  perNode: 2_000,
  pendingPerAddress: 100,
  perTenant: null,
  idleTimeoutMs: 60_000,
  audioLeadMs: 5_000,
  relay: { highWaterBytes: 256 * 1024, maxBytes: 8 * 1024 * 1024 },
};

export const HTTP_LIMIT_DEFAULTS: HttpLimits = { requestsPerKeyPerMinute: 1200, authFailuresPerIpPerMinute: 20 };

type Env = Record<string, string | undefined>;

function fail(variable: string, message: string): never {
  throw new CallrecError('ERR_CONFIG', `${variable}: ${message}`);
}

function port(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) fail(name, `must be a port number 0-65535, got "${raw}"`);
  return n;
}

function positiveSeconds(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) fail(name, `must be a positive number of seconds, got "${raw}"`);
  return n;
}

function url(env: Env, name: string, fallback: string, schemes: string[]): string {
  // An HTTP address may be given as people type it (`localhost:8080`).
  const raw = schemes.includes('http:') && env[name] ? withScheme(env[name], 'http') : env[name] || fallback;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    fail(name, `must be a URL, got "${raw}"`);
  }
  if (!schemes.includes(parsed.protocol)) {
    fail(name, `must start with ${schemes.map((s) => `${s}//`).join(' or ')}, got "${raw}"`);
  }
  return raw;
}

const TELNYX_REQUIRED = ['TELNYX_API_KEY', 'TELNYX_CREDENTIAL_ID', 'TELNYX_TEST_NUMBER'] as const;

/** The test call is configured by all three `TELNYX_REQUIRED` variables or none: half a configuration is a mistake to report. */
function telnyx(env: Env): TelnyxConfig | undefined {
  const missing = TELNYX_REQUIRED.filter((name) => !env[name]);
  if (missing.length === TELNYX_REQUIRED.length) return undefined;
  if (missing.length > 0)
    fail(missing[0], `must be set with ${TELNYX_REQUIRED.filter((name) => env[name]).join(' and ')}`);
  const testNumber = env.TELNYX_TEST_NUMBER!;
  if (!/^(\+[1-9]\d{1,14}|sip:\S+)$/.test(testNumber))
    fail('TELNYX_TEST_NUMBER', `must be an E.164 number (+15551234567) or a sip: address, got "${testNumber}"`);
  return {
    apiKey: env.TELNYX_API_KEY!,
    credentialId: env.TELNYX_CREDENTIAL_ID!,
    testNumber,
    apiUrl: url(env, 'TELNYX_API_URL', 'https://api.telnyx.com', ['http:', 'https:']).replace(/\/+$/, ''),
  };
}

function positiveInteger(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) fail(name, `must be a whole number of at least 1, got "${raw}"`);
  return n;
}

/** Whether `entry` is an IPv4/IPv6 address or CIDR. */
function isCidr(entry: string): boolean {
  const [address, bits, extra] = entry.split('/');
  const family = net.isIP(address);
  const maxBits = family === 6 ? 128 : 32;
  const validBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits);
  return family !== 0 && validBits && extra === undefined;
}

const list = (env: Env, name: string) =>
  (env[name] ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
/** Distinct consent prompts a tenant may have synthesized per hour per node: a few per agent is usual. */
export const PROMPT_LIMIT_DEFAULT = 20;

/** `MAX_TRANSCODES_PER_TENANT` ≤ `MAX_TRANSCODES`. */
function transcodeLimits(env: Env): TranscodeLimits {
  const perNode = positiveInteger(env, 'MAX_TRANSCODES', TRANSCODE_LIMIT_DEFAULTS.perNode);
  const perTenant = positiveInteger(
    env,
    'MAX_TRANSCODES_PER_TENANT',
    Math.min(perNode, TRANSCODE_LIMIT_DEFAULTS.perTenant),
  );
  if (perTenant > perNode)
    fail('MAX_TRANSCODES_PER_TENANT', `must not exceed MAX_TRANSCODES (${perNode}), got ${perTenant}`);
  return { perNode, perTenant };
}

/** `BRIDGE_RELAY_HIGH_WATER_BYTES` ≤ `BRIDGE_RELAY_MAX_BYTES`. */
function relayLimits(env: Env): RelayLimits {
  const defaults = STREAM_LIMIT_DEFAULTS.relay;
  const highWaterBytes = positiveInteger(env, 'BRIDGE_RELAY_HIGH_WATER_BYTES', defaults.highWaterBytes);
  const maxBytes = positiveInteger(env, 'BRIDGE_RELAY_MAX_BYTES', defaults.maxBytes);
  if (highWaterBytes > maxBytes)
    fail(
      'BRIDGE_RELAY_HIGH_WATER_BYTES',
      `must not exceed BRIDGE_RELAY_MAX_BYTES (${maxBytes}), got ${highWaterBytes}`,
    );
  return { highWaterBytes, maxBytes };
}

/** `TRUST_PROXY`: comma-separated IPv4/IPv6 addresses or CIDRs. */
function trustedProxies(env: Env): string[] {
  const entries = list(env, 'TRUST_PROXY');
  for (const entry of entries) {
    if (!isCidr(entry))
      fail('TRUST_PROXY', `must be comma-separated IP addresses or CIDRs (e.g. 10.0.0.0/8,::1), got "${entry}"`);
  }
  return entries;
}

/** `EGRESS_ALLOW`: comma-separated addresses, CIDRs or host names. */
function egressAllow(env: Env): string[] {
  const entries = list(env, 'EGRESS_ALLOW');
  for (const entry of entries) {
    const hostName =
      /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(entry) &&
      !/^[\d.]+$/.test(entry);
    if (!isCidr(entry) && !hostName)
      fail(
        'EGRESS_ALLOW',
        `must be comma-separated IP addresses, CIDRs or host names (e.g. 10.0.0.0/8,runtime.internal), got "${entry}"`,
      );
  }
  return entries;
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = env[name] || fallback;
  if (!values.includes(raw as T)) fail(name, `must be one of ${values.join(', ')}, got "${raw}"`);
  return raw as T;
}

/**
 * Settings the TTS engines and the S3 client read from the environment themselves
 * (`createTtsEngine`, `S3ObjectStore`), checked here so a typo stops the node at start rather
 * than at the first call that needs a prompt or the first upload.
 */
function checkProviderSettings(env: Env): void {
  if (env.FLITE_VOICE) oneOf(env, 'FLITE_VOICE', FLITE_VOICES, 'slt');
  if (env.GOOGLE_TTS_VOICE && !/^[a-z]{2,3}-[A-Za-z0-9]{2,4}-\S+$/.test(env.GOOGLE_TTS_VOICE)) {
    fail('GOOGLE_TTS_VOICE', `must be a voice name like en-US-Standard-C, got "${env.GOOGLE_TTS_VOICE}"`);
  }
  if (env.GOOGLE_TTS_API_KEY && !/^\S{10,}$/.test(env.GOOGLE_TTS_API_KEY))
    fail('GOOGLE_TTS_API_KEY', 'must be an API key (no spaces), or unset to use Application Default Credentials');
  if (env.AWS_REGION && !/^[a-z0-9][\w-]{0,62}$/i.test(env.AWS_REGION))
    fail('AWS_REGION', `must be a region name like us-east-1, got "${env.AWS_REGION}"`);
  const credentials = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (credentials && !fs.existsSync(credentials))
    fail('GOOGLE_APPLICATION_CREDENTIALS', `names no file: "${credentials}"`);
}

/** Bits a random key must carry: as many as the keys callrec mints itself (32 random bytes). */
const OPERATOR_KEY_BITS = 256;

/**
 * `CALLREC_API_KEY` must be as strong as a key callrec mints (32 random bytes): it is stored as
 * an unsalted SHA-256 like every API key, which is sound only for secrets nobody can guess or
 * brute-force offline. Rejecting a weak key at start keeps one hashing scheme for all keys (a
 * pepper would be one more secret to keep and a rehash of every key). Strength is estimated
 * twice, and both must reach 256 bits: the length times the bits per character of the alphabet
 * classes it draws on (hex, base64, base64url or more), and the length times its Shannon entropy
 * per character, which catches repetition and patterns in a long but human-chosen string.
 */
function checkOperatorKey(key: string): void {
  const howTo = 'must be at least 32 random bytes, e.g. `openssl rand -base64 32` or `openssl rand -hex 32`';
  const hexOnly = /^[0-9a-f]+$/i.test(key);
  const alphabet = hexOnly
    ? 16
    : [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].reduce((n, re, i) => n + (re.test(key) ? [26, 26, 10, 2][i] : 0), 0);
  const counts = new Map<string, number>();
  for (const c of key) counts.set(c, (counts.get(c) ?? 0) + 1);
  const shannon = [...counts.values()].reduce((bits, n) => bits - (n / key.length) * Math.log2(n / key.length), 0);
  if (key.length * Math.log2(alphabet) < OPERATOR_KEY_BITS)
    fail('CALLREC_API_KEY', `${howTo}; this one is too short (${key.length} characters)`);
  // Random hex of 64 characters measures 3.34 bits per character at worst in a million samples (base64 of 44, 4.2): 3 leaves margin.
  if (shannon < 3) fail('CALLREC_API_KEY', `${howTo}; this one repeats itself too much to be random`);
}

/** `SIP_LISTEN`, `SIP_TLS_CERT`, `SIP_TLS_KEY`, `SIP_PUBLIC_ADDRESS`, `RTP_PORTS`, `SIP_MIN_SE`; undefined without `SIP_LISTEN`. */
function sip(env: Env): SipConfig | undefined {
  if (!env.SIP_LISTEN) return undefined;
  const listen = env.SIP_LISTEN.split(',').map((entry) => {
    const m = /^(udp|tcp|tls):(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(entry.trim());
    const host = m ? m[2].replace(/^\[|\]$/g, '') : '';
    if (!m || net.isIP(host) === 0 || Number(m[3]) > 65535)
      fail(
        'SIP_LISTEN',
        `must be comma-separated udp:ADDRESS:PORT, tcp:ADDRESS:PORT or tls:ADDRESS:PORT (e.g. udp:0.0.0.0:5060,tcp:0.0.0.0:5060,tls:0.0.0.0:5061), got "${entry.trim()}"`,
      );
    return { protocol: m[1] as SipListen['protocol'], host, port: Number(m[3]) };
  });
  const publicAddress = env.SIP_PUBLIC_ADDRESS || listen[0].host;
  if (net.isIP(publicAddress) === 0)
    fail('SIP_PUBLIC_ADDRESS', `must be the IP address SBCs reach this node at, got "${publicAddress}"`);
  if (!env.SIP_PUBLIC_ADDRESS && (publicAddress === '0.0.0.0' || publicAddress === '::'))
    fail('SIP_PUBLIC_ADDRESS', `must be set when SIP_LISTEN listens on ${publicAddress}`);
  const ports = /^(\d{1,5})-(\d{1,5})$/.exec(env.RTP_PORTS || '40000-40999');
  const first = Number(ports?.[1]);
  const last = Number(ports?.[2]);
  if (!ports || first < 1024 || last > 65535 || last - first < 1)
    fail(
      'RTP_PORTS',
      `must be a range FIRST-LAST within 1024-65535 holding at least two ports, got "${env.RTP_PORTS}"`,
    );
  const minSe = env.SIP_MIN_SE || '90';
  if (!/^\d{1,5}$/.test(minSe) || Number(minSe) < 1 || Number(minSe) > 86_400)
    fail('SIP_MIN_SE', `must be a number of seconds from 1 to 86400 (RFC 4028's floor is 90), got "${minSe}"`);
  return {
    listen,
    tls: sipTls(env, listen),
    publicAddress,
    rtpPorts: { first, last },
    minSessionExpires: Number(minSe),
  };
}

/** The `tls:` listeners' certificate and key, read and checked to be a matching PEM pair; undefined without such a listener. */
function sipTls(env: Env, listen: readonly SipListen[]): SipConfig['tls'] {
  if (!listen.some((l) => l.protocol === 'tls')) return undefined;
  const pair = {
    cert: pemFile(env, 'SIP_TLS_CERT', 'certificate (chain)'),
    key: pemFile(env, 'SIP_TLS_KEY', 'private key'),
  };
  try {
    tls.createSecureContext(pair);
  } catch (err) {
    fail('SIP_TLS_CERT', `and SIP_TLS_KEY are not a PEM certificate and its private key: ${(err as Error).message}`);
  }
  return pair;
}

/** The text of the PEM file a variable names; fails naming it when unset or unreadable. */
function pemFile(env: Env, variable: string, what: string): string {
  const file = env[variable];
  if (!file) fail(variable, `must name the PEM ${what} file of the tls: listener in SIP_LISTEN`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    return fail(variable, `cannot read "${file}": ${(err as Error).message}`);
  }
}

/** Reads and validates the configuration; throws `ERR_CONFIG` naming the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const p = port(env, 'PORT', 8080);
  const dataDir = path.resolve(env.DATA_DIR || './data');
  const masterKey = env.CALLREC_MASTER_KEY || undefined;
  if (masterKey !== undefined && Buffer.from(masterKey, 'base64').length !== 32) {
    fail('CALLREC_MASTER_KEY', 'must be 32 bytes, base64-encoded');
  }
  const apiKey = env.CALLREC_API_KEY || undefined;
  if (apiKey !== undefined) checkOperatorKey(apiKey);
  const ttsEngine = env.TTS_ENGINE || 'flite';
  if (!/^(flite|google|file:.+)$/.test(ttsEngine))
    fail('TTS_ENGINE', `must be flite, google or file:<dir>, got "${ttsEngine}"`);
  const queuePrefix = env.CALLREC_QUEUE_PREFIX || 'callrec';
  if (!/^[\w.-]+$/.test(queuePrefix)) fail('CALLREC_QUEUE_PREFIX', 'may hold only letters, digits, _ . -');
  const logLevel = oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info');
  checkProviderSettings(env);
  return {
    port: p,
    host: env.HOST || '0.0.0.0',
    workerPort: port(env, 'WORKER_PORT', 8081),
    metricsPort: env.METRICS_PORT ? port(env, 'METRICS_PORT', 0) : undefined,
    dataDir,
    databaseUrl: url(env, 'DATABASE_URL', `sqlite://${path.join(dataDir, 'callrec.db')}`, [
      'sqlite:',
      'postgres:',
      'postgresql:',
    ]),
    // CALLREC_TEST_DEFAULT_REDIS_URL is for tests only: a default address where nothing answers, as on a bare machine.
    redisUrl: url(env, 'REDIS_URL', env.CALLREC_TEST_DEFAULT_REDIS_URL || 'redis://127.0.0.1:6379', [
      'redis:',
      'rediss:',
    ]),
    redisUrlDefault: !env.REDIS_URL,
    queuePrefix,
    storageUrl: url(env, 'STORAGE_URL', `file://${path.join(dataDir, 'recordings')}`, ['file:', 'gs:', 's3:']),
    storageEndpoint: env.STORAGE_ENDPOINT ? url(env, 'STORAGE_ENDPOINT', '', ['http:', 'https:']) : undefined,
    masterKey,
    apiKey,
    ttsEngine,
    publicUrl: url(env, 'PUBLIC_URL', `http://localhost:${p}`, ['http:', 'https:']),
    logLevel,
    logFormat: oneOf(env, 'LOG_FORMAT', ['auto', 'json', 'pretty'] as const, 'auto'),
    trustProxy: trustedProxies(env),
    http: {
      requestsPerKeyPerMinute: positiveInteger(env, 'RATE_LIMIT_PER_KEY', HTTP_LIMIT_DEFAULTS.requestsPerKeyPerMinute),
      authFailuresPerIpPerMinute: positiveInteger(
        env,
        'AUTH_FAILURES_PER_IP',
        HTTP_LIMIT_DEFAULTS.authFailuresPerIpPerMinute,
      ),
    },
    streams: {
      authTimeoutMs:
        positiveSeconds(env, 'STREAM_AUTH_TIMEOUT_SECONDS', STREAM_LIMIT_DEFAULTS.authTimeoutMs / 1000) * 1000,
      preStartMessages: positiveInteger(env, 'STREAM_PRESTART_MESSAGES', STREAM_LIMIT_DEFAULTS.preStartMessages),
      preStartBytes: positiveInteger(env, 'STREAM_PRESTART_BYTES', STREAM_LIMIT_DEFAULTS.preStartBytes),
      perNode: positiveInteger(env, 'MAX_STREAMS_PER_NODE', STREAM_LIMIT_DEFAULTS.perNode),
      pendingPerAddress: positiveInteger(env, 'MAX_PENDING_STREAMS_PER_IP', STREAM_LIMIT_DEFAULTS.pendingPerAddress),
      perTenant: env.MAX_STREAMS_PER_TENANT ? positiveInteger(env, 'MAX_STREAMS_PER_TENANT', 1) : null,
      idleTimeoutMs:
        positiveSeconds(env, 'STREAM_IDLE_TIMEOUT_SECONDS', STREAM_LIMIT_DEFAULTS.idleTimeoutMs / 1000) * 1000,
      audioLeadMs: positiveSeconds(env, 'STREAM_AUDIO_LEAD_SECONDS', STREAM_LIMIT_DEFAULTS.audioLeadMs / 1000) * 1000,
      relay: relayLimits(env),
    },
    flite: {
      workers: positiveInteger(env, 'FLITE_WORKERS', FLITE_POOL_DEFAULTS.workers),
      maxQueued: positiveInteger(env, 'FLITE_QUEUE_MAX', FLITE_POOL_DEFAULTS.maxQueued),
      maxWaitMs: positiveSeconds(env, 'FLITE_QUEUE_WAIT_SECONDS', FLITE_POOL_DEFAULTS.maxWaitMs / 1000) * 1000,
    },
    promptsPerTenantPerHour: positiveInteger(env, 'CONSENT_PROMPTS_PER_TENANT_PER_HOUR', PROMPT_LIMIT_DEFAULT),
    transcodes: transcodeLimits(env),
    recoveryIntervalMs: positiveSeconds(env, 'RECOVERY_INTERVAL_SECONDS', 30) * 1000,
    telnyx: telnyx(env),
    spoolUrl: env.SPOOL_URL ? url(env, 'SPOOL_URL', '', ['file:', 'gs:', 's3:']) : undefined,
    spoolSegmentSeconds: positiveSeconds(env, 'SPOOL_SEGMENT_SECONDS', 10),
    drainTimeoutMs: positiveSeconds(env, 'DRAIN_TIMEOUT_SECONDS', 3600) * 1000,
    jobTimeLimitMs: positiveSeconds(env, 'JOB_TIME_LIMIT_SECONDS', JOB_TIME_LIMIT_DEFAULT_MS / 1000) * 1000,
    sip: sip(env),
    tsaUrl: env.TSA_URL ? url(env, 'TSA_URL', '', ['http:', 'https:']) : undefined,
    tsaTimeoutMs: positiveSeconds(env, 'TSA_TIMEOUT_SECONDS', 10) * 1000,
    egressAllow: egressAllow(env),
    remoteTimeouts: {
      connectMs:
        positiveSeconds(env, 'REMOTE_CONNECT_TIMEOUT_SECONDS', REMOTE_TIMEOUT_DEFAULTS.connectMs / 1000) * 1000,
      requestMs:
        positiveSeconds(env, 'REMOTE_REQUEST_TIMEOUT_SECONDS', REMOTE_TIMEOUT_DEFAULTS.requestMs / 1000) * 1000,
    },
  };
}
