import { formatFuzzReport, runFuzz } from '../../bench/fuzz.js';
import { adapters } from '../../src/protocols/index.js';

// Issue 13: a bounded run of `npm run fuzz` (bench/fuzz.ts): a node in a process of its own takes
// mutated captures on every media endpoint, mutated requests on every route of its
// /openapi.json, mutated SIP requests over UDP and TCP and mutated RTP at SIPREC sessions' ports
// while a normal call and a normal SIPREC session stream beside them. A new seed each run, printed with the
// input of any failing case: `npm run fuzz -- --seed <seed> --case <n>` replays it.
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

test(`fuzzing the media endpoints, the API and SIPREC (seed ${SEED}) neither crashes the node, nor answers an undocumented 5xx, nor grows its memory, nor touches a neighbouring call`, async () => {
  const report = await runFuzz({ seconds: 20, seed: SEED, concurrency: 3, log: () => {} });
  if (report.failures.length > 0) throw new Error(formatFuzzReport(report));
  // Every target was reached, and the streams got past authentication into the media path.
  expect(Object.keys(report.targets).sort()).toEqual(
    ['http', 'rtp', 'sip:tcp', 'sip:udp', ...Object.keys(adapters).map((provider) => `stream:${provider}`)].sort(),
  );
  // SIP requests were answered (400s among them), and RTP cases set up and ended their sessions.
  expect(report.outcomes['sip 400']).toBeGreaterThan(0);
  expect(report.outcomes['rtp 200/200']).toBeGreaterThan(0);
  expect(report.outcomes['close 1000']).toBeGreaterThan(0);
  expect(report.outcomes['status 200']).toBeGreaterThan(0);
}, 120_000);
