/**
 * The dashboard's one way to the callrec API: JSON over fetch with the signed-in key as a
 * Bearer header. The key lives in sessionStorage only (never a URL, a cookie or a log line).
 */
import type { AgentView, CallView } from '../../src/api/views.js';
import type { CallRecordingSettings } from '../../src/agents/settings.js';

export type { AgentView, CallView, CallRecordingSettings };
export type RecordingFormat = CallRecordingSettings['format'];

/** `GET /api/me`: who the key is and what this server offers. */
export interface Me {
  tenant_id: string;
  key: { id: string; name: string; scopes: string[] };
  operator: boolean;
  features: { test_call: boolean };
}

export interface CallPage {
  data: CallView[];
  next_cursor: string | null;
}

export interface Peaks {
  duration: number;
  channels: string[];
  peaks: number[][];
}

/** An API error answer (`{"error": {"code", "message", "field"?}}`), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const KEY_ITEM = 'callrec.apiKey';

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY_ITEM),
  signIn: (key: string) => sessionStorage.setItem(KEY_ITEM, key),
  signOut: () => sessionStorage.removeItem(KEY_ITEM),
};

/** Calls the API with the session's key (or `key`, while signing in). */
export async function api<T>(method: string, path: string, body?: unknown, key = session.key()): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${key ?? ''}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'ERR_NETWORK', 'The server could not be reached.');
  }
  const payload = (await res.json().catch(() => null)) as {
    error?: { code: string; message: string; field?: string };
  } | null;
  if (!res.ok) {
    const error = payload?.error;
    throw new ApiError(
      res.status,
      error?.code ?? `HTTP_${res.status}`,
      error?.message ?? `The server answered ${res.status}.`,
      error?.field,
    );
  }
  return payload as T;
}

/** True when the key holds `scope`, directly or through `admin`. */
export function can(me: Me, scope: string): boolean {
  return me.key.scopes.includes(scope) || me.key.scopes.includes('admin');
}

export const FORMATS: RecordingFormat[] = ['mp3', 'wav', 'ogg'];

/** A short-lived URL for one recording in one format, usable by `<audio>` and downloads. */
export function playbackUrl(
  callId: string,
  format: RecordingFormat,
  download = false,
): Promise<{ url: string; expires_at: string }> {
  return api('POST', `/api/calls/${encodeURIComponent(callId)}/recording/url`, { format, download });
}
