import { decoderFor } from '../../media/codec.js';
import { payloadAt, runLoad, wireStream } from '../../bench/load.js';
import { LOAD_WIRES } from '../../bench/wires.js';
import type { Provider } from '../../src/protocols/types.js';
import { decodeAudio } from '../helpers/audio.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
  await ts.agent('bench-wires', {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    dual_channel: true,
    format: 'wav',
  });
});
afterAll(() => ts?.close());

// `callrec bench --provider <name>` streams its fork phase in that provider's messages: each
// wire must be one callrec records, both tracks, as the same audio Twilio's wire carries.
test.each(Object.keys(LOAD_WIRES) as Provider[])(
  "the bench's %s wire is a stream callrec records, both legs, sample for sample",
  async (provider) => {
    const callId = uniqueCallId(`wire-${provider}`);
    const load = await runLoad({
      url: `${ts.wsUrl}/media/${provider}`,
      stream: wireStream(LOAD_WIRES[provider]!, ['inbound', 'outbound']),
      callIds: [callId],
      seconds: 1,
      tracks: 'both',
      params: { agent_id: 'bench-wires', token: ts.key },
    });
    expect(load.closeCodes).toEqual([1000]);
    const rec = await ts.recording(callId);
    expect(rec.status).toBe('ready');
    const audio = await decodeAudio(
      new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
      'wav',
    );
    // The first frame as the generator sent it, decoded, on both channels.
    const frame = new Int16Array(160);
    decoderFor({ codec: 'pcmu', sampleRate: 8000 })(Buffer.from(payloadAt(0), 'base64'), frame);
    for (const channel of audio.channels)
      expect(Array.from(channel.subarray(0, 160), (s) => Math.round(s * 32768))).toEqual(Array.from(frame));
  },
  30_000,
);
