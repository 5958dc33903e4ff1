import { useEffect, useState } from 'preact/hooks';
import { useAction } from '../action.js';
import { ApiError, session, type CallView } from '../api.js';
import { ErrorMessage } from './Notice.js';
import { formatTime } from '../format.js';

interface Jwk {
  kty: string;
  crv: string;
  x: string;
  kid: string;
}

interface Manifest {
  signed_at: string;
  signed_later: boolean;
  audio: { sha256: string; byte_size: number };
}

type Verdict =
  | { state: 'checking' }
  | { state: 'signed'; kid: string; manifest: Manifest }
  | { state: 'broken'; reason: string }
  | { state: 'unsigned'; reason: string };

const fromBase64Url = (text: string) =>
  Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const hex = (bytes: ArrayBuffer) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');

/** GET with the session's key; the body as `as` gives it. */
async function fetchWithKey(path: string): Promise<Response> {
  const res = await fetch(path, { headers: { authorization: `Bearer ${session.key() ?? ''}` } });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
    throw new ApiError(
      res.status,
      body?.error?.code ?? `HTTP_${res.status}`,
      body?.error?.message ?? `The server answered ${res.status}.`,
    );
  }
  return res;
}

/**
 * Verifies a manifest here, in the browser, against the published key set (WebCrypto Ed25519):
 * the dashboard does not take the server's word for it.
 */
async function verifyInBrowser(jws: string, keys: Jwk[]): Promise<Verdict> {
  const [header, payload, signature] = jws.split('.');
  if (!signature) return { state: 'broken', reason: 'the manifest is not a compact JWS' };
  const { kid, alg } = JSON.parse(new TextDecoder().decode(fromBase64Url(header))) as { kid?: string; alg?: string };
  const jwk = keys.find((k) => k.kid === kid);
  if (alg !== 'EdDSA' || !jwk)
    return { state: 'broken', reason: `signed by key ${kid ?? '(none)'}, which the published key set does not hold` };
  const key = await crypto.subtle.importKey(
    'jwk',
    { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
    { name: 'Ed25519' },
    false,
    ['verify'],
  );
  const ok = await crypto.subtle.verify(
    { name: 'Ed25519' },
    key,
    fromBase64Url(signature),
    new TextEncoder().encode(`${header}.${payload}`),
  );
  if (!ok)
    return { state: 'broken', reason: `the signature does not verify with key ${kid} (the manifest was changed)` };
  return {
    state: 'signed',
    kid: kid!,
    manifest: JSON.parse(new TextDecoder().decode(fromBase64Url(payload))) as Manifest,
  };
}

/** "Signed" (verified here) or "Does not verify", the audio's hash on demand, and the evidence package. */
export function Evidence({ call }: { call: CallView }) {
  const [verdict, setVerdict] = useState<Verdict>({ state: 'checking' });
  const [audioCheck, setAudioCheck] = useState<string | null>(null);
  const base = `/api/calls/${encodeURIComponent(call.id)}`;

  useEffect(() => {
    setVerdict({ state: 'checking' });
    setAudioCheck(null);
    Promise.all([
      fetchWithKey(`${base}/recording/manifest`).then((r) => r.text()),
      fetch('/.well-known/callrec-keys.json').then((r) => r.json() as Promise<{ keys: Jwk[] }>),
    ])
      .then(([jws, set]) => verifyInBrowser(jws, set.keys))
      .then(setVerdict, (err: Error) =>
        setVerdict(
          err instanceof ApiError && err.status === 404
            ? { state: 'unsigned', reason: 'This recording has no signed manifest yet.' }
            : { state: 'broken', reason: err.message },
        ),
      );
  }, [call.id]);

  const { error: audioError, run: checkAudio } = useAction(
    async () => {
      if (verdict.state !== 'signed') return;
      const audio = await (await fetchWithKey(`${base}/recording`)).arrayBuffer();
      const digest = hex(await crypto.subtle.digest('SHA-256', audio));
      setAudioCheck(
        digest === verdict.manifest.audio.sha256
          ? `The audio matches the manifest (SHA-256 ${digest.slice(0, 16)}…).`
          : `Does not verify: the audio's SHA-256 is ${digest}, the manifest says ${verdict.manifest.audio.sha256}.`,
      );
    },
    (err) => `The audio could not be checked: ${err.message}`,
  );

  const { error: packageError, run: download } = useAction(
    async () => {
      const blob = await (await fetchWithKey(`${base}/evidence`)).blob();
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = `${call.id}-evidence.zip`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    },
    (err) => `The evidence package could not be downloaded: ${err.message}`,
  );

  return (
    <div class="evidence" aria-live="polite">
      {verdict.state === 'checking' && <p class="notice">Checking the signature…</p>}
      {verdict.state === 'unsigned' && <p class="notice">{verdict.reason}</p>}
      {verdict.state === 'broken' && (
        <p class="evidence-broken" role="alert">
          <strong>Does not verify</strong>: {verdict.reason}
        </p>
      )}
      {verdict.state === 'signed' && (
        <p class="evidence-signed">
          <strong>Signed</strong> by key <code>{verdict.kid.slice(0, 12)}…</code> at{' '}
          {formatTime(verdict.manifest.signed_at)}
          {verdict.manifest.signed_later
            ? ' (signed after recording, for a recording made before signing existed)'
            : ''}
          ; verified in this browser.
        </p>
      )}
      {verdict.state === 'signed' && (
        <button type="button" onClick={checkAudio}>
          Check the audio against the manifest
        </button>
      )}
      {audioCheck && (
        <p class={audioCheck.startsWith('Does not') ? 'evidence-broken' : 'evidence-signed'}>{audioCheck}</p>
      )}
      <button type="button" onClick={download}>
        Download evidence package
      </button>
      <ErrorMessage error={audioError ?? packageError} />
    </div>
  );
}
