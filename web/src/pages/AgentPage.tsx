import { useEffect, useState } from 'preact/hooks';
import { useAction } from '../action.js';
import { api, ApiError, can, FORMATS, type AgentView, type CallRecordingSettings, type Me } from '../api.js';
import { ErrorMessage, Forbidden } from '../components/Notice.js';
import { href } from '../router.js';
import { CALL_RECORDING_DEFAULTS, CallRecordingPatchSchema } from '../../../src/agents/settings.js';

type Settings = CallRecordingSettings;
type Field = keyof Settings;

/** A setting's bounds as the API checks them, so the form states the same range it enforces. */
function bounds(field: Field): { min: number; max: number } {
  const schema = CallRecordingPatchSchema.properties[field] as {
    minimum?: number;
    maximum?: number;
    minLength?: number;
    maxLength?: number;
  };
  return { min: schema.minimum ?? schema.minLength ?? 0, max: schema.maximum ?? schema.maxLength ?? Infinity };
}

const days = bounds('storage_days');
const timeout = bounds('consent_timeout_seconds');
const message = bounds('consent_message');

const FIELD_PREFIX = 'voice_tools.call_recording.';

interface Control {
  field: Field;
  label: string;
  kind: 'checkbox' | 'text' | 'textarea' | 'number' | 'select';
  options?: Array<[string, string]>;
  hint?: string;
}

/** The Voice Settings form: the product's own labels first, then callrec's extensions. */
const CONTROLS: Control[] = [
  { field: 'enabled', label: 'Enable Call Recording', kind: 'checkbox' },
  {
    field: 'auto_record',
    label: 'Auto-record',
    kind: 'checkbox',
    hint: 'Record every call from the start; otherwise recording starts by API.',
  },
  {
    field: 'consent_prompt',
    label: 'Consent prompt',
    kind: 'checkbox',
    hint: 'Play the consent message before recording.',
  },
  {
    field: 'consent_message',
    label: 'Consent message',
    kind: 'textarea',
    hint: `What callers hear before recording starts; up to ${message.max} characters.`,
  },
  {
    field: 'dual_channel',
    label: 'Dual-channel',
    kind: 'checkbox',
    hint: 'Caller and agent on separate channels (stereo).',
  },
  {
    field: 'storage_days',
    label: 'Keep recordings (days)',
    kind: 'number',
    hint: `Keep recordings for ${days.min}–${days.max} days, then delete them.`,
  },
  {
    field: 'consent_mode',
    label: 'Consent mode',
    kind: 'select',
    options: [
      ['one_party', 'One-party (announce, then record)'],
      ['two_party', 'Two-party (caller presses a digit to agree)'],
    ],
  },
  {
    field: 'consent_digit',
    label: 'Consent digit',
    kind: 'text',
    hint: 'The key a caller presses to agree (two-party): one of 0–9, * or #.',
  },
  {
    field: 'consent_timeout_seconds',
    label: 'Consent timeout (seconds)',
    kind: 'number',
    hint: `How long a caller has to press it: ${timeout.min}–${timeout.max} seconds.`,
  },
  { field: 'format', label: 'Format', kind: 'select', options: FORMATS.map((f) => [f, f]) },
  {
    field: 'pause_behavior',
    label: 'Pause behaviour',
    kind: 'select',
    options: [
      ['silence', 'Insert silence'],
      ['skip', 'Skip the paused time'],
    ],
  },
  {
    field: 'agent_ws_url',
    label: 'Agent runtime URL',
    kind: 'text',
    hint: 'The voice agent runtime’s WebSocket (ws:// or wss://) for bridge mode; empty for none.',
  },
  {
    field: 'siprec_agent_aor',
    label: 'SIPREC agent address',
    kind: 'text',
    hint: 'SIPREC: the participant whose address matches is the agent (* matches any characters, e.g. sip:*@agents.example.com); empty: whoever sends the first stream is the caller.',
  },
];

function ControlInput({
  control,
  value,
  disabled,
  invalid,
  onChange,
}: {
  control: Control;
  value: Settings[Field];
  disabled: boolean;
  invalid: boolean;
  onChange: (value: Settings[Field]) => void;
}) {
  const id = `setting-${control.field}`;
  const described = [control.hint && `${id}-hint`, invalid && `${id}-error`].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    name: control.field,
    disabled,
    'aria-invalid': invalid || undefined,
    'aria-describedby': described,
  };
  switch (control.kind) {
    case 'checkbox':
      return (
        <input
          type="checkbox"
          {...common}
          checked={value as boolean}
          onChange={(e) => onChange(e.currentTarget.checked)}
        />
      );
    case 'textarea':
      return <textarea {...common} rows={3} value={value as string} onInput={(e) => onChange(e.currentTarget.value)} />;
    case 'number':
      // Sent as typed (a number when it parses): the API's validation, not the browser's, is the one that counts.
      return (
        <input
          type="number"
          {...common}
          value={String(value)}
          onInput={(e) =>
            onChange(e.currentTarget.value === '' ? ('' as never) : (Number(e.currentTarget.value) as never))
          }
        />
      );
    case 'select':
      return (
        <select {...common} value={value as string} onChange={(e) => onChange(e.currentTarget.value as never)}>
          {control.options!.map(([v, text]) => (
            <option value={v}>{text}</option>
          ))}
        </select>
      );
    case 'text':
      return (
        <input
          type="text"
          {...common}
          value={(value as string | null) ?? ''}
          onInput={(e) => onChange(e.currentTarget.value as never)}
        />
      );
  }
}

/** One agent's Voice Settings: loaded from the API, saved with `PATCH /agents/{id}`. */
export function AgentPage({ me, agentId }: { me: Me; agentId: string }) {
  const [settings, setSettings] = useState<Settings | null>(null);
  const [exists, setExists] = useState(true);
  const [fieldError, setFieldError] = useState<{ field: Field; message: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const canWrite = can(me, 'agents:write');

  useEffect(() => {
    setSettings(null);
    api<AgentView>('GET', `/agents/${encodeURIComponent(agentId)}`).then(
      (agent) => setSettings(agent.voice_tools.call_recording),
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 404) {
          setExists(false);
          setSettings({ ...CALL_RECORDING_DEFAULTS });
        } else setError((err as Error).message);
      },
    );
  }, [agentId]);

  const { error: saveError, submit: save } = useAction(
    async () => {
      setFieldError(null);
      setSaved(false);
      const call_recording = {
        ...settings!,
        agent_ws_url: settings!.agent_ws_url || null,
        siprec_agent_aor: settings!.siprec_agent_aor || null,
      };
      try {
        const agent = await api<AgentView>('PATCH', `/agents/${encodeURIComponent(agentId)}`, {
          voice_tools: { call_recording },
        });
        setSettings(agent.voice_tools.call_recording);
        setExists(true);
        setSaved(true);
      } catch (err) {
        // A refused value is told beside its field; anything else under the form.
        const field =
          err instanceof ApiError && err.field?.startsWith(FIELD_PREFIX)
            ? (err.field.slice(FIELD_PREFIX.length) as Field)
            : null;
        if (!field || !CONTROLS.some((c) => c.field === field)) throw err;
        // The API's reason ("must be a whole number from 1 to 3650") after the field's label, as one sentence.
        const label = CONTROLS.find((c) => c.field === field)!.label;
        setFieldError({ field, message: `${label} ${(err as Error).message.replace(/^[\w.]+: /, '')}.` });
      }
    },
    (err) => `Not saved: ${err.message}`,
  );

  return (
    <section>
      <p>
        <a href={href.agents()}>← Agents</a>
      </p>
      <h1>
        Agent <span class="agent-id">{agentId}</span>
      </h1>
      {!exists && (
        <p class="notice">This agent has no saved settings yet: the form shows the defaults. Save creates it.</p>
      )}
      <ErrorMessage error={error} />
      {settings && (
        <form class="voice-settings" onSubmit={save} aria-labelledby="voice-settings-title" noValidate>
          <h2 id="voice-settings-title">Voice Settings</h2>
          {!canWrite && <Forbidden scope="agents:write">These settings are read-only.</Forbidden>}
          {CONTROLS.map((control) => {
            const invalid = fieldError?.field === control.field;
            return (
              <div class={`setting ${control.kind}`}>
                <label for={`setting-${control.field}`}>{control.label}</label>
                <ControlInput
                  control={control}
                  value={settings[control.field]}
                  disabled={!canWrite}
                  invalid={invalid}
                  onChange={(value) => {
                    setSaved(false);
                    setSettings({ ...settings, [control.field]: value });
                  }}
                />
                {control.hint && <small id={`setting-${control.field}-hint`}>{control.hint}</small>}
                {invalid && (
                  <p id={`setting-${control.field}-error`} class="field-error" role="alert">
                    {fieldError.message}
                  </p>
                )}
              </div>
            );
          })}
          {canWrite && <button type="submit">Save</button>}
          <ErrorMessage error={saveError} />
          {saved && (
            <p class="saved" role="status">
              Saved.
            </p>
          )}
        </form>
      )}
    </section>
  );
}
