import { randomUUID } from 'node:crypto';
import { allowedRuntimes, resolveCallRecording, type CallRecordingSettings } from '../agents/settings.js';
import type { AuthFailures } from '../auth/failures.js';
import { displayPrefix } from '../auth/secrets.js';
import { hasScope } from '../auth/scopes.js';
import { CallrecError } from '../errors.js';
import { isSafeId, SAFE_ID_RULE } from '../ids.js';
import { EgressRefusedError, type EgressPolicy } from '../net/egress.js';
import type { StreamLimits } from '../config.js';
import type { CallSource, StreamStart, UpgradeInfo } from '../protocols/types.js';
import type { CallMode, Store } from '../store/index.js';
import type { CallRegistry } from './registry.js';
import type { CallSession } from './session.js';

/** Who a stream is and how it runs, once its credentials and agent checked out. */
export interface StreamIdentity {
  tenantId: string;
  agentId: string;
  callId: string;
  mode: CallMode;
  settings: CallRecordingSettings;
  /** The voice-agent runtime's WebSocket URL (bridge mode); null in fork mode. */
  runtimeUrl: string | null;
  /** Whether the provider plays audio sent back on this stream. */
  canPlayAudio: boolean;
}

/** The upgrade as authentication sees it: also who sent it (`TRUST_PROXY` applied, as Fastify does for HTTP). */
export interface StreamUpgrade extends UpgradeInfo {
  /** The client's address: its failed authentications are limited. */
  address: string;
  /** The tenant the client's transport already authenticated it as (SIPREC: a `sip_sources` address); no token is then asked. */
  tenantId?: string;
}

export interface StreamAuthContext {
  store: Store;
  /** The failure budgets (AUTH_FAILURES_PER_IP), kept with the HTTP API's. */
  authFailures: AuthFailures;
  /** Counts a stream's `agent_url` refused for naming a runtime its agent does not list. */
  egress: Pick<EgressPolicy, 'refused'>;
}

/**
 * Checks a stream's token (an API key with `media:stream` scope) and agent, and decides its
 * mode (SPEC §4), from the start message's parameters and the upgrade's query string.
 *
 * Only failures are limited, per client address and token prefix: a provider's media servers
 * carry every customer's streams from a few shared addresses, so a limit per address alone let
 * one customer's bad tokens (21 sufficed) lock the others' valid streams out. A valid token is
 * always let in; a token that failed AUTH_FAILURES_PER_IP times from an address in a minute is
 * refused there without a look-up until the window ends (tokens carry 256 random bits: the
 * limit spares the database a flood, it does not make guessing harder).
 * A stream's `agent_url` may only pick one of the runtimes its agent lists (`agent_ws_url`,
 * `agent_ws_urls`): a media key must not send the node to any host it likes.
 * Rejects `ERR_RATE_LIMITED`, `ERR_MISSING_AGENT`, `ERR_BAD_TOKEN`, `ERR_UNKNOWN_AGENT`, `ERR_BAD_PARAMETER`, `ERR_EGRESS_REFUSED`, `ERR_NO_RUNTIME`.
 */
export async function authenticateStream(
  ctx: StreamAuthContext,
  upgrade: StreamUpgrade,
  start: StreamStart,
): Promise<StreamIdentity> {
  const { store, authFailures } = ctx;
  const params = { ...upgrade.query, ...start.params };
  const agentId = params.agent_id;
  if (!agentId) throw new CallrecError('ERR_MISSING_AGENT', 'stream has no agent_id parameter');
  if (!isSafeId(agentId)) throw new CallrecError('ERR_BAD_PARAMETER', `agent_id ${SAFE_ID_RULE}`);
  // SIPREC: the SIP layer authenticated the client already (digest or `sip_sources`) and names its tenant.
  let tenantId = upgrade.tenantId;
  if (tenantId === undefined) {
    const failureKey = streamFailureKey(upgrade.address, params.token ?? '');
    const retryAfterMs = authFailures.retryAfterMs(failureKey);
    if (retryAfterMs > 0) throw tooManyFailures(retryAfterMs);
    const principal = params.token ? await store.keys.verify(params.token) : null;
    if (!principal || !hasScope(principal, 'media:stream')) {
      const retryAfterMs = authFailures.fail(failureKey);
      if (retryAfterMs > 0) throw tooManyFailures(retryAfterMs);
      throw new CallrecError('ERR_BAD_TOKEN', 'token missing, unknown, revoked or without media:stream scope');
    }
    tenantId = principal.tenantId;
  }
  const agent = await store.agents.get(tenantId, agentId);
  if (!agent) throw new CallrecError('ERR_UNKNOWN_AGENT', `unknown agent_id "${agentId.slice(0, 64)}"`);
  const settings = resolveCallRecording(agent.settings);
  const runtimeUrl = params.agent_url || settings.agent_ws_url || null;
  if (params.agent_url) {
    if (!/^wss?:\/\//.test(params.agent_url) || !URL.canParse(params.agent_url))
      throw new CallrecError('ERR_BAD_PARAMETER', 'agent_url must be a ws:// or wss:// URL');
    if (!allowedRuntimes(settings).has(new URL(params.agent_url).href)) {
      ctx.egress.refused.inc({ target: 'agent_url' });
      throw new EgressRefusedError('agent_url', "not one of the agent's runtimes (agent_ws_url, agent_ws_urls)");
    }
  }
  const mode = streamMode(params, start, runtimeUrl);
  // The call id names the spool, the object key and log lines: held to the API's id rule.
  const callId = params.call_id || start.providerCallId || start.streamId || randomUUID();
  if (!isSafeId(callId)) throw new CallrecError('ERR_BAD_PARAMETER', `call_id ${SAFE_ID_RULE}`);
  return {
    tenantId,
    agentId,
    callId,
    mode,
    settings,
    runtimeUrl: mode === 'bridge' ? runtimeUrl : null,
    // A bridge carries audio back by definition (the runtime speaks on it).
    canPlayAudio: mode === 'bridge' || canCarryAudioBack(params, start),
  };
}

/** Whose failure budget a media endpoint's failed credential spends: its client address and token prefix. */
export function streamFailureKey(address: string, token: string): string {
  return `${address} token ${displayPrefix(token)}`;
}

export function tooManyFailures(retryAfterMs: number): CallrecError {
  return new CallrecError(
    'ERR_RATE_LIMITED',
    `too many failed authentications of this token from this address; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
  );
}

/**
 * The stream can carry audio back unless its start says it is one-way; the stream's
 * `bidirectional` parameter overrides what the start says (or, Telnyx, does not say).
 */
function canCarryAudioBack(params: Record<string, string>, start: StreamStart): boolean {
  return params.bidirectional !== undefined ? params.bidirectional === 'true' : start.canSendAudio !== false;
}

/** SPEC §4, the same on every provider: a bridge when a runtime is named and audio can go back; `mode=` forces either. */
function streamMode(params: Record<string, string>, start: StreamStart, runtimeUrl: string | null): CallMode {
  switch (params.mode) {
    case undefined:
      return runtimeUrl && canCarryAudioBack(params, start) ? 'bridge' : 'fork';
    case 'fork':
      return 'fork';
    case 'bridge':
      if (!runtimeUrl)
        throw new CallrecError(
          'ERR_NO_RUNTIME',
          "mode=bridge, but neither the agent's agent_ws_url nor the stream's agent_url names a runtime",
        );
      return 'bridge';
    default:
      throw new CallrecError('ERR_BAD_PARAMETER', `mode must be "fork" or "bridge", not "${params.mode.slice(0, 32)}"`);
  }
}

/** Most sessions of one call recorded for a provider that streams a call in several (`StreamStart.manySessions`). */
const MAX_CALL_SESSIONS = 50;

/** The call id the `n`th session of a call records under: the call's own id, then `<id>-2`, `-3`, … */
function sessionCallId(callId: string, n: number): string {
  return n === 1 ? callId : `${callId}-${n}`;
}

export interface ClaimContext {
  store: Store;
  registry: CallRegistry;
  nodeId: string;
  limits: Pick<StreamLimits, 'perTenant'>;
}

/** A call this node has claimed: the registry holds it, and its row is being created. */
export interface CallClaim {
  identity: StreamIdentity;
  /** Resolves once the call row exists; rejects `ERR_CALL_EXISTS` (the registry entry then released). */
  created: Promise<void>;
}

/**
 * Claims the call for `session`: synchronously in this node's registry (throws `ERR_CALL_EXISTS`
 * when another live stream holds it, `ERR_TENANT_STREAM_LIMIT` when the tenant holds its
 * MAX_STREAMS_PER_TENANT on this node), then in the background counts it across the cluster
 * (`created` rejects `ERR_TENANT_STREAM_LIMIT` at the cap; no count when the cap is off) and
 * creates the call row.
 */
export function claimCall(
  ctx: ClaimContext,
  session: CallSession,
  provider: CallSource,
  start: StreamStart,
  identity: StreamIdentity,
): CallClaim {
  const { tenantId, mode } = identity;
  const base = identity.callId;
  const exists = (when: string) => new CallrecError('ERR_CALL_EXISTS', `call "${base.slice(0, 64)}" ${when}`);
  // This node's count first (no round trip), then the cluster's (the registry's, in Redis).
  const { perTenant } = ctx.limits;
  if (perTenant !== null && ctx.registry.countOf(tenantId) >= perTenant)
    throw new CallrecError(
      'ERR_TENANT_STREAM_LIMIT',
      `the tenant holds its ${perTenant} streams on this node (MAX_STREAMS_PER_TENANT)`,
    );
  // A provider that streams a call in several sessions: each later one takes the next free id.
  // (An id the suffix would take past the id rule has one session only.)
  const sessions = start.manySessions && isSafeId(sessionCallId(base, MAX_CALL_SESSIONS)) ? MAX_CALL_SESSIONS : 1;
  let n = 1;
  while (!ctx.registry.add(tenantId, sessionCallId(base, n), session))
    if (++n > sessions) throw exists('is already streaming');
  identity.callId = sessionCallId(base, n);
  const createRow = (): Promise<void> =>
    ctx.store.calls
      .create({
        tenantId,
        id: identity.callId,
        agentId: identity.agentId,
        provider,
        mode,
        sampleRate: start.format.sampleRate,
        legs: mode === 'bridge' ? ['caller', 'agent'] : start.legs,
        settings: identity.settings,
        streamId: start.streamId ?? null,
        nodeId: ctx.nodeId,
        participants: start.participants,
      })
      .then(
        () => {},
        (err: CallrecError) => {
          if (err.code !== 'ERR_CONFLICT') throw err;
          for (n++; n <= sessions; n++) {
            if (!ctx.registry.rename(tenantId, identity.callId, sessionCallId(base, n), session)) continue;
            identity.callId = sessionCallId(base, n);
            return createRow();
          }
          throw exists('was already streamed');
        },
      );
  const created = ctx.registry
    .admit(tenantId, identity.callId, session, perTenant)
    .then(createRow)
    .catch((err: Error) => {
      ctx.registry.delete(tenantId, identity.callId, session);
      throw err;
    });
  // Awaited by the session; until then a rejection must not go unhandled.
  created.catch(() => {});
  return { identity, created };
}
