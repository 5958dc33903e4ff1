import { fixtureStream } from '../../bench/fixture-stream.js';
import { adapters } from '../../src/protocols/index.js';
import type { Provider } from '../../src/protocols/types.js';
import { sameAudioStream } from '../../bench/wires.js';

// `callrec bench --provider`: a provider's capture, cycled past its end, must read to the server
// as one longer call: every frame accepted by the provider's adapter, each leg's frames moving on
// 20 ms a tick, never back (else the load would measure dropped duplicates, not a call). The
// providers the bench loads from their captures: those without a same-audio stream (bench/wires.ts).
const FROM_CAPTURES = (Object.keys(adapters) as Provider[]).filter(
  (provider) => sameAudioStream(provider, ['inbound', 'outbound']) === null,
);
test.each(FROM_CAPTURES)('%s: the capture cycles into one continuous stream', async (provider) => {
  const stream = await fixtureStream(provider);
  const url = new URL(stream.url('ws://127.0.0.1:1/media/twilio', 'bench-1', { agent_id: 'a', token: 't' }));
  expect(url.pathname).toBe(`/media/${provider}`);
  const upgrade = { headers: {}, query: Object.fromEntries(url.searchParams) };
  const adapter = adapters[provider](upgrade);
  let started = false;
  for (const m of stream.start('bench-1', { agent_id: 'a', token: 't' })) {
    const event = adapter.parseProviderMessage(m.data, m.binary);
    if (event.type === 'start') {
      started = true;
      expect({ ...upgrade.query, ...event.start.params }).toMatchObject({
        agent_id: 'a',
        token: 't',
        call_id: 'bench-1',
      });
    }
  }
  expect(started).toBe(true);
  const last = new Map<string, number>();
  for (let tick = 0; tick < 600; tick++) {
    for (const frame of stream.frames(tick)) {
      const event = adapter.parseProviderMessage(frame.data, frame.binary);
      if (event.type !== 'media' && event.type !== 'stereo') throw new Error(`tick ${tick}: ${event.type}`);
      const leg = event.type === 'media' ? event.leg : 'both';
      // Resampled streams trail by the filter's few ms; every frame is a tick after the last.
      expect(Math.round(event.timestampMs / 20)).toBe(tick);
      expect(event.timestampMs).toBeGreaterThan(last.get(leg) ?? -1);
      last.set(leg, event.timestampMs);
    }
  }
});
