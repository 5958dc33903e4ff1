import { randomUUID } from 'node:crypto';
import { payloadAt, runLoad } from '../../bench/load.js';
import { sameAudioStream } from '../../bench/wires.js';
import { decoderFor } from '../../media/codec.js';
import { decodeAudio } from '../helpers/audio.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
  await ts.agent('load-agent', {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    format: 'wav',
    dual_channel: true,
  });
});
afterAll(() => ts?.close());

test('the generator loads Twilio and Genesys side by side with the same audio: both recordings hold it on both channels', async () => {
  const twilio = randomUUID();
  const genesys = randomUUID();
  const load = await runLoad({
    url: `${ts.wsUrl}/media/twilio`,
    callIds: [twilio],
    paired: {
      url: `${ts.wsUrl}/media/genesys`,
      callIds: [genesys],
      stream: sameAudioStream('genesys', ['inbound', 'outbound'])!,
    },
    seconds: 1,
    tracks: 'both',
    params: { agent_id: 'load-agent', token: ts.key },
  });
  expect(load.closeCodes).toEqual([1000, 1000]);
  const expected = new Int16Array(160);
  decoderFor({ codec: 'pcmu', sampleRate: 8000 })(Buffer.from(payloadAt(10), 'base64'), expected);
  for (const callId of [twilio, genesys]) {
    expect((await ts.recording(callId)).status).toBe('ready');
    const audio = await decodeAudio(
      new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
      'wav',
    );
    // The 11th frame of either leg, as sent.
    for (const channel of audio.channels)
      expect(Array.from(channel.subarray(1600, 1760), (v) => Math.round(v * 32768))).toEqual(Array.from(expected));
  }
});
