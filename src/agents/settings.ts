import { Type, type Static } from 'typebox';
import type { EgressPolicy } from '../net/egress.js';
import { StringEnum } from '../schemas.js';

const RuntimeUrl = Type.String({
  pattern: '^wss?://[^\\s/?#]+[^\\s]*$',
  maxLength: 2048,
  'x-error-message': 'must be a ws:// or wss:// URL',
});

/** A SIPREC participant's address of record, `*` matching any characters (`sip:*@agents.example.com`). */
const AorPattern = Type.String({
  pattern: '^(sip|sips|tel):[^\\s]+$',
  maxLength: 256,
  'x-error-message':
    'must be an address of record (sip:, sips: or tel:) in which * matches any characters, e.g. sip:*@agents.example.com',
});

/**
 * `voice_tools.call_recording` as a PATCH may carry it: every field optional, nothing unknown.
 * The resolved settings type is derived from it, so the schema and the type cannot drift.
 */
export const CallRecordingPatchSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    auto_record: Type.Optional(Type.Boolean()),
    consent_prompt: Type.Optional(Type.Boolean()),
    consent_message: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    dual_channel: Type.Optional(Type.Boolean()),
    storage_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
    consent_mode: Type.Optional(StringEnum(['one_party', 'two_party'])),
    consent_digit: Type.Optional(
      Type.String({ pattern: '^[0-9*#]$', 'x-error-message': 'must be one key: 0–9, * or #' }),
    ),
    consent_timeout_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 120 })),
    format: Type.Optional(StringEnum(['mp3', 'wav', 'ogg'])),
    pause_behavior: Type.Optional(StringEnum(['silence', 'skip'])),
    agent_ws_url: Type.Optional(Type.Union([RuntimeUrl, Type.Null()])),
    /** Other runtimes a stream's `agent_url` parameter may pick (besides `agent_ws_url`); any other is refused. */
    agent_ws_urls: Type.Optional(Type.Array(RuntimeUrl, { maxItems: 32, uniqueItems: true })),
    /** SIPREC: the participant whose AOR matches is the agent (right channel); null: the first stream's sender is the caller. */
    siprec_agent_aor: Type.Optional(Type.Union([AorPattern, Type.Null()])),
  },
  { additionalProperties: false },
);

/** The body of `PATCH /agents/{id}`: the seed's shape, deep-merged into what is stored. */
export const AgentSettingsPatchSchema = Type.Object(
  {
    voice_tools: Type.Optional(
      Type.Object({ call_recording: Type.Optional(CallRecordingPatchSchema) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);

/** An agent's stored settings: the merge of every PATCH it received (defaults are not stored). */
export type AgentSettings = Static<typeof AgentSettingsPatchSchema>;

/** Per-agent recording settings with every default applied (SPEC §3). */
export type CallRecordingSettings = Required<Static<typeof CallRecordingPatchSchema>>;

export const CALL_RECORDING_DEFAULTS: Readonly<CallRecordingSettings> = Object.freeze({
  enabled: false,
  auto_record: false,
  consent_prompt: true,
  consent_message: 'This call may be recorded for quality purposes.',
  dual_channel: false,
  storage_days: 90,
  consent_mode: 'one_party',
  consent_digit: '1',
  consent_timeout_seconds: 10,
  format: 'mp3',
  pause_behavior: 'silence',
  agent_ws_url: null,
  agent_ws_urls: [],
  siprec_agent_aor: null,
});

/** Whether an AOR matches a `siprec_agent_aor` pattern: the whole of it, case-insensitively, `*` matching any characters. */
export function matchesAor(pattern: string, aor: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 'i').test(aor);
}

/** The runtime URLs the agent's settings name, normalised (`new URL().href`), for comparing a stream's `agent_url` with. */
export function allowedRuntimes(settings: Pick<CallRecordingSettings, 'agent_ws_url' | 'agent_ws_urls'>): Set<string> {
  const urls =
    settings.agent_ws_url === null ? settings.agent_ws_urls : [settings.agent_ws_url, ...settings.agent_ws_urls];
  return new Set(urls.map((url) => new URL(url).href));
}

/** The recording settings an agent's calls use: what was stored, defaults for the rest. */
export function resolveCallRecording(stored: AgentSettings): CallRecordingSettings {
  return { ...CALL_RECORDING_DEFAULTS, ...stored.voice_tools?.call_recording };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * JSON merge of a PATCH into stored settings: objects merge key by key, anything else
 * (including `null` and arrays) replaces. Neither input is modified.
 */
export function mergeSettings<T extends object>(stored: T, patch: object): T {
  const out: Record<string, unknown> = { ...(stored as Record<string, unknown>) };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] = isPlainObject(value) ? mergeSettings(isPlainObject(current) ? current : {}, value) : value;
  }
  return out as T;
}

/** Refuses (400 `ERR_EGRESS_REFUSED`, naming the field) a runtime URL in `patch` whose host is internal. */
export async function checkRuntimeUrls(egress: EgressPolicy, patch: AgentSettings): Promise<void> {
  const settings = patch.voice_tools?.call_recording;
  const field = 'voice_tools.call_recording';
  if (settings?.agent_ws_url) await egress.check(settings.agent_ws_url, `${field}.agent_ws_url`, 'agent_ws_url');
  for (const [i, url] of (settings?.agent_ws_urls ?? []).entries())
    await egress.check(url, `${field}.agent_ws_urls.${i}`, 'agent_ws_url');
}
