import { formatFuzzReport, runFuzz } from '../../bench/fuzz.js';
import { adapters } from '../../src/protocols/index.js';

// Issue 13: a bounded run of `npm run fuzz` (bench/fuzz.ts): a node in a process of its own takes
// mutated captures on every media endpoint and mutated requests on every route of its
// /openapi.json while a normal call streams beside them. A new seed each run, printed with the
// input of any failing case: `npm run fuzz -- --seed <seed> --case <n>` replays it.
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

test(`fuzzing the media endpoints and the API (seed ${SEED}) neither crashes the node, nor answers an undocumented 5xx, nor grows its memory, nor touches a neighbouring call`, async () => {
  const report = await runFuzz({ seconds: 20, seed: SEED, concurrency: 3, log: () => {} });
  if (report.failures.length > 0) throw new Error(formatFuzzReport(report));
  // Every target was reached, and the streams got past authentication into the media path.
  expect(Object.keys(report.targets).sort()).toEqual(
    ['http', ...Object.keys(adapters).map((provider) => `stream:${provider}`)].sort(),
  );
  expect(report.outcomes['close 1000']).toBeGreaterThan(0);
  expect(report.outcomes['status 200']).toBeGreaterThan(0);
}, 120_000);
