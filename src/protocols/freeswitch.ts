// Built from: the mod_audio_stream README (amigniter/mod_audio_stream): `uuid_audio_stream <uuid>
// start <url> <mono|mixed|stereo> <8k|16k> <metadata>`, the metadata sent as the first text frame,
// binary L16 after it, and the JSON `streamAudio` reply that plays audio back.
import { isUtf8 } from 'node:buffer';
import {
  BinaryStreamAdapter,
  dropCredentials,
  l16Opening,
  mixChannels,
  rateField,
  type BinaryDialect,
  type BinaryOpening,
  type RuntimeText,
} from './binary-stream.js';
import type { AdapterFactory, UpgradeInfo } from './types.js';
import {
  flattenParams,
  malformed,
  NOTHING,
  objectField,
  optionalString,
  parseJsonObject,
  stringField,
  textMessage,
} from './wire.js';

/** `8k`/`16k` as the API command spells it, or a number of Hz. */
function parseRate(value: string | undefined): number {
  if (value === undefined) throw malformed('sampleRate', 'missing: say it in the metadata or as ?sample_rate=');
  const k = /^(\d+)k$/i.exec(value);
  const rate = k ? Number(k[1]) * 1000 : Number(value);
  if (!Number.isInteger(rate)) throw malformed('sampleRate');
  return rate;
}

/**
 * The metadata is whatever text the dialplan passed; callrec reads a JSON object from it, with
 * the command's mix type and rate (`mixType`, `sampleRate`), which the module does not send
 * itself, here or as `?mix_type=`/`?sample_rate=` on the URL.
 */
function parseStart(data: Buffer, upgrade: UpgradeInfo): BinaryOpening {
  const metadata = parseJsonObject(data);
  const params: Record<string, string> = {};
  flattenParams(metadata, params);
  const rate = parseRate(params.sampleRate ?? upgrade.query.sample_rate);
  const channels = mixChannels(params.mixType ?? upgrade.query.mix_type ?? 'mono', 'mixType');
  return l16Opening(optionalString(metadata, 'uuid', 'uuid'), params, rate, channels);
}

function parseRuntimeText(data: Buffer): RuntimeText {
  const message = parseJsonObject(data);
  if (message.type !== 'streamAudio') return { type: 'other' }; // the module fires it as an event, no more
  const audio = objectField(message, 'data', 'data');
  // Only raw L16 is audio callrec can record; a wav/mp3/ogg file still plays, unrecorded.
  if (audio.audioDataType !== 'raw') return { type: 'other' };
  return {
    type: 'audio',
    payload: Buffer.from(stringField(audio, 'audioData', 'data.audioData'), 'base64'),
    rate: rateField(audio, 'sampleRate', 'data.sampleRate'),
  };
}

const dialect: BinaryDialect = {
  provider: 'freeswitch',
  parseStart,
  // Later text frames are the dialplan's own (`send_text`, `stop` metadata): relayed, nothing to record.
  parseControl: (data) => {
    if (!isUtf8(data)) throw malformed('message', 'not valid UTF-8');
    return NOTHING;
  },
  parseRuntimeText,
  mediaMessage: (audio, rate) =>
    textMessage({
      type: 'streamAudio',
      data: { audioDataType: 'raw', sampleRate: rate, audioData: audio.toString('base64') },
    }),
  // mod_audio_stream has no marks and no way to stop what it plays.
  markMessage: () => null,
  clearMessage: () => null,
  runtimeStartMessage(raw, upgrade) {
    const metadata = parseJsonObject(raw);
    dropCredentials(upgrade, metadata);
    return textMessage(metadata);
  },
};

/** FreeSWITCH `mod_audio_stream` (`uuid_audio_stream … start`). */
export const freeswitch: AdapterFactory = (upgrade) => new BinaryStreamAdapter(dialect, upgrade);
