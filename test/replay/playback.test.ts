import path from 'node:path';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { ProviderPlayback } from '../../src/replay/playback.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures');
const text = (message: unknown) => Buffer.from(JSON.stringify(message));
/** `ms` of 8 kHz μ-law as a Twilio media message from callrec. */
const twilioMedia = (ms: number) =>
  text({ event: 'media', streamSid: 'MZ1', media: { payload: Buffer.alloc(ms * 8).toString('base64') } });

describe('ProviderPlayback', () => {
  let twilio: Fixture;
  let vonage: Fixture;
  beforeAll(async () => {
    twilio = await readFixture(path.join(FIXTURES, 'twilio-connect-caller.jsonl'));
    vonage = await readFixture(path.join(FIXTURES, 'vonage-tones.jsonl'));
  });

  test('a mark is confirmed once the audio queued before it has played, on the stream clock', () => {
    const playback = new ProviderPlayback(twilio);
    playback.receive(twilioMedia(1000), false, 200);
    playback.receive(twilioMedia(500), false, 400); // queued behind the first second
    playback.receive(text({ event: 'mark', streamSid: 'MZ1', mark: { name: 'prompt' } }), false, 400);
    expect(playback.due(1699)).toEqual([]);
    const [echo] = playback.due(1700);
    const start = JSON.parse(twilio.messages.find((m) => (m.data as string).includes('"start"'))!.data as string);
    expect(JSON.parse(echo)).toMatchObject({ event: 'mark', streamSid: start.streamSid, mark: { name: 'prompt' } });
    expect(playback.firstMarkAtMs).toBe(1700);
    expect(playback.due(5000)).toEqual([]); // once
  });

  test('a text message that is JSON but not an object is ignored, not thrown on', () => {
    const playback = new ProviderPlayback(twilio);
    for (const data of ['null', '1', '"media"', '[]'])
      expect(() => playback.receive(Buffer.from(data), false, 0)).not.toThrow();
    playback.receive(text({ event: 'mark', streamSid: 'MZ1', mark: { name: 'after' } }), false, 0);
    expect(playback.due(0).map((m) => JSON.parse(m).mark.name)).toEqual(['after']);
  });

  test('clear empties the queue: the marks waiting are confirmed at once', () => {
    const playback = new ProviderPlayback(twilio);
    playback.receive(twilioMedia(3000), false, 0);
    playback.receive(text({ event: 'mark', streamSid: 'MZ1', mark: { name: 'a' } }), false, 0);
    playback.receive(text({ event: 'clear', streamSid: 'MZ1' }), false, 800);
    expect(playback.due(800).map((m) => JSON.parse(m).mark.name)).toEqual(['a']);
  });

  test('Vonage: binary frames are the audio, a notify is answered with websocket:notify; DTMF in its shape', () => {
    const playback = new ProviderPlayback(vonage); // L16 16 kHz: 32 bytes a millisecond
    playback.receive(Buffer.alloc(640 * 50), true, 0); // 1 s
    playback.receive(text({ action: 'notify', payload: { name: 'callrec-consent-1' } }), false, 10);
    expect(playback.due(999)).toEqual([]);
    expect(playback.due(1000).map((m) => JSON.parse(m))).toEqual([
      { event: 'websocket:notify', payload: { name: 'callrec-consent-1' } },
    ]);
    expect(JSON.parse(playback.dtmf('1')!)).toMatchObject({ event: 'websocket:dtmf', digit: '1' });
  });
});
