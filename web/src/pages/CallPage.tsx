import { useEffect, useRef, useState } from 'preact/hooks';
import { useAction } from '../action.js';
import { api, ApiError, can, FORMATS, playbackUrl, type CallView, type Me, type RecordingFormat } from '../api.js';
import { ErrorMessage, Forbidden } from '../components/Notice.js';
import { Player } from '../components/Player.js';
import { Evidence } from '../components/Evidence.js';
import { callDurationMs, formatDuration, formatTime } from '../format.js';
import { href } from '../router.js';
import { consentText, recordingStatusText } from '../words.js';

/** `framesLate` / `prompt_started_ms` → "frames late" / "prompt started ms". */
function words(key: string): string {
  return key.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, (_, a: string, b: string) => `${a} ${b.toLowerCase()}`);
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'object')
    return Object.entries(value)
      .map(([k, v]) => `${words(k)} ${text(v)}`)
      .join(', ');
  return String(value);
}

/** A JSON object's fields as `key: value` lines (consent record, alignment figures); `keys` picks and orders them. */
function Fields({ value, keys }: { value: Record<string, unknown> | null; keys?: string[] }) {
  if (!value) return <>—</>;
  return (
    <ul class="fields">
      {(keys ?? Object.keys(value)).map((key) => (
        <li>
          <span class="key">{words(key)}</span>: {text(value[key])}
        </li>
      ))}
    </ul>
  );
}

/** Whether the recording holds the whole call, and where audio was lost (a crash, a full disk, dropped frames). */
function completeness(recording: CallView['recording']): string {
  if (!recording) return '—';
  if (recording.complete) return 'yes';
  const spans = recording.lost_spans.map(
    (span) => `${formatDuration(span.start_ms)}–${formatDuration(span.end_ms)} (${span.reason})`,
  );
  return `no: audio lost at ${spans.join(', ') || 'an unknown place'}`;
}

function Metadata({ call }: { call: CallView }) {
  const rows: Array<[string, preact.ComponentChildren]> = [
    ['Agent', <a href={href.agent(call.agent_id)}>{call.agent_id}</a>],
    ['Provider', call.provider],
    ['Mode', call.mode],
    ['Status', call.status === 'live' ? 'live' : `ended${call.end_reason ? ` (${call.end_reason})` : ''}`],
    ['Started', formatTime(call.started_at)],
    ['Ended', formatTime(call.ended_at)],
    ['Duration', formatDuration(callDurationMs(call))],
    ['Recording', recordingStatusText(call.recording_status)],
    ['Complete', completeness(call.recording)],
    [
      'Channels',
      call.recording ? (call.recording.channels === 2 ? 'dual (caller left, agent right)' : 'mono mix') : '—',
    ],
    ['Sample rate', `${call.sample_rate} Hz`],
    ['Consent', consentText(call.consent)],
    ['Consent details', <Fields value={call.consent} keys={['reason', 'digit', 'message']} />],
    ['Alignment', <Fields value={call.alignment} />],
    ['Retention expiry', formatTime(call.recording?.retention_expires_at ?? null)],
    ['Legal hold', call.legal_hold ? `on — ${call.legal_hold_reason ?? ''}` : 'off'],
    // SIPREC: who the recording metadata named, the leg (channel) each one's audio is on, and
    // when one joined or left mid-call (metadata updates).
    ...(call.participants.length > 0
      ? [
          [
            'Participants',
            call.participants
              .map(
                (p) =>
                  `${String(p.name || p.aor || p.id)}${p.aor && p.name ? ` <${String(p.aor)}>` : ''}${p.leg ? ` (${String(p.leg)})` : ''}${typeof p.joined_at === 'string' ? `, joined ${formatTime(p.joined_at)}` : ''}${typeof p.left_at === 'string' ? `, left ${formatTime(p.left_at)}` : ''}`,
              )
              .join('; '),
          ] as [string, string],
        ]
      : []),
  ];
  return (
    <dl class="metadata">
      {rows.map(([term, detail]) => (
        <div>
          <dt>{term}</dt>
          <dd>{detail}</dd>
        </div>
      ))}
    </dl>
  );
}

function Download({ call }: { call: CallView }) {
  const [format, setFormat] = useState<RecordingFormat>(call.recording!.format);
  const { error, run: save } = useAction(
    async () => {
      const { url } = await playbackUrl(call.id, format, true);
      // Same origin, so the browser honours the file name it is given.
      const link = document.createElement('a');
      link.href = url;
      link.download = `${call.id}.${format}`;
      link.click();
    },
    (err) => `The download failed: ${err.message}`,
  );
  return (
    <div class="download">
      <label for="download-format">Format</label>
      <select id="download-format" value={format} onChange={(e) => setFormat(e.currentTarget.value as RecordingFormat)}>
        {FORMATS.map((f) => (
          <option value={f}>{f}</option>
        ))}
      </select>
      <button type="button" onClick={save}>
        Download
      </button>
      <ErrorMessage error={error} />
    </div>
  );
}

function DeleteRecording({ call, onChanged }: { call: CallView; onChanged: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const { error, run: confirm } = useAction(
    async () => {
      dialog.current!.close();
      await api('DELETE', `/api/calls/${encodeURIComponent(call.id)}/recording`);
      onChanged();
    },
    (err) =>
      err instanceof ApiError && err.status === 423
        ? 'This call is on legal hold: its recording cannot be deleted until the hold is released.'
        : `The recording was not deleted: ${err.message}`,
  );
  return (
    <div class="delete">
      <button type="button" class="danger" onClick={() => dialog.current!.showModal()}>
        Delete recording
      </button>
      <dialog ref={dialog} aria-labelledby="delete-title">
        <h2 id="delete-title">Delete this recording?</h2>
        <p>The audio of call {call.id} is removed for good; a tombstone records who deleted it and when.</p>
        <div class="actions">
          <button type="button" class="danger" onClick={confirm}>
            Delete
          </button>
          <button type="button" onClick={() => dialog.current!.close()}>
            Cancel
          </button>
        </div>
      </dialog>
      <ErrorMessage error={error} />
    </div>
  );
}

function LegalHold({ call, onChanged }: { call: CallView; onChanged: (call: CallView) => void }) {
  const [reason, setReason] = useState('');
  const { error, submit } = useAction(async () => {
    onChanged(
      await api<CallView>('PUT', `/api/calls/${encodeURIComponent(call.id)}/legal-hold`, {
        hold: !call.legal_hold,
        reason,
      }),
    );
    setReason('');
  });
  return (
    <form class="legal-hold" onSubmit={submit}>
      <label for="hold-reason">{call.legal_hold ? 'Reason for releasing the hold' : 'Reason for the legal hold'}</label>
      <input
        id="hold-reason"
        required
        maxLength={500}
        value={reason}
        onInput={(e) => setReason(e.currentTarget.value)}
      />
      <button type="submit">{call.legal_hold ? 'Release legal hold' : 'Place legal hold'}</button>
      <ErrorMessage error={error} />
    </form>
  );
}

/** One call: player and waveform, metadata, download, delete and legal hold, as the key allows. */
export function CallPage({ me, callId }: { me: Me; callId: string }) {
  const [call, setCall] = useState<CallView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const canRead = can(me, 'recordings:read');

  const reload = () =>
    api<CallView>('GET', `/api/calls/${encodeURIComponent(callId)}`).then(setCall, (err: unknown) =>
      setError(err instanceof ApiError && err.status === 404 ? `No call with id ${callId}.` : (err as Error).message),
    );

  useEffect(() => {
    setCall(null);
    setError(null);
    if (canRead) void reload();
  }, [callId, canRead]);

  // While the call is live or its recording is being finalized, follow it without a reload.
  const settling =
    call !== null && (call.status === 'live' || ['recording', 'paused', 'processing'].includes(call.recording_status));
  useEffect(() => {
    if (!settling) return;
    const timer = setInterval(() => void reload(), 3000);
    return () => clearInterval(timer);
  }, [settling, callId]);

  const ready = call?.recording_status === 'ready';
  return (
    <section>
      <p>
        <a href={href.calls()}>← Call Logs</a>
      </p>
      <h1>
        Call <span class="call-id">{callId}</span>
      </h1>
      {!canRead && (
        <Forbidden scope="recordings:read">
          No player and no download: this key may not play or download recordings.
        </Forbidden>
      )}
      <ErrorMessage error={error} />
      {call && (
        <>
          {ready ? (
            <Player call={call} />
          ) : (
            <p class="notice">No playable recording ({recordingStatusText(call.recording_status).toLowerCase()}).</p>
          )}
          <div class="call-actions">
            {ready && <Download call={call} />}
            {ready &&
              (can(me, 'recordings:delete') ? (
                <DeleteRecording call={call} onChanged={reload} />
              ) : (
                <Forbidden scope="recordings:delete">Deleting is not available.</Forbidden>
              ))}
            {can(me, 'admin') ? <LegalHold call={call} onChanged={setCall} /> : null}
          </div>
          {ready && canRead && (
            <>
              <h2>Evidence</h2>
              <Evidence call={call} />
            </>
          )}
          <h2>Details</h2>
          <Metadata call={call} />
        </>
      )}
    </section>
  );
}
