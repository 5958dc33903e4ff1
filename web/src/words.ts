/** What the dashboard says for the API's values: words for people, not the values' spellings. */
import type { CallView } from './api.js';

type RecordingStatus = CallView['recording_status'];

const RECORDING_STATUS: Record<RecordingStatus, string> = {
  none: 'Not recorded',
  recording: 'Recording',
  paused: 'Paused',
  processing: 'Processing',
  ready: 'Ready',
  failed: 'Failed',
  deleting: 'Being deleted',
  deleted: 'Deleted',
};

export const RECORDING_STATUSES = Object.keys(RECORDING_STATUS) as RecordingStatus[];

export function recordingStatusText(status: RecordingStatus): string {
  return RECORDING_STATUS[status] ?? status;
}

const CONSENT_MODE: Record<string, string> = { one_party: 'one-party', two_party: 'two-party' };

const CONSENT_OUTCOME: Record<string, string> = {
  pending: 'Pending',
  announced: 'Announced',
  agreed: 'Agreed',
  declined: 'Declined',
  timeout: 'No answer in time',
  not_required: 'Not required',
  failed: 'Could not be asked',
};

/**
 * A call's consent in a few words: "Announced (one-party)", "Agreed (two-party)", "Not
 * required" (no prompt was configured), "—" when the call has no consent record.
 */
export function consentText(consent: CallView['consent']): string {
  const outcome = consent?.outcome;
  if (typeof outcome !== 'string') return '—';
  const words = CONSENT_OUTCOME[outcome] ?? outcome.replace(/_/g, ' ');
  const mode = typeof consent?.mode === 'string' ? CONSENT_MODE[consent.mode] : undefined;
  return outcome === 'not_required' || !mode ? words : `${words} (${mode})`;
}
