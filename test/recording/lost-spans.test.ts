import { addLostSpan, MAX_LOST_SPANS, mergeLostSpans } from '../../src/recording/lost-spans.js';
import type { LostSpan } from '../../src/store/index.js';

test('spans of one reason that touch are one span; another reason, or a gap, starts a new one', () => {
  const spans: LostSpan[] = [];
  addLostSpan(spans, 100, 200, 'a');
  addLostSpan(spans, 200, 260, 'a');
  addLostSpan(spans, 260, 300, 'b');
  addLostSpan(spans, 400, 420, 'b');
  expect(spans).toEqual([
    { start_ms: 100, end_ms: 260, reason: 'a' },
    { start_ms: 260, end_ms: 300, reason: 'b' },
    { start_ms: 400, end_ms: 420, reason: 'b' },
  ]);
});

test(`at most ${MAX_LOST_SPANS} spans: past them the last grows to cover every later loss`, () => {
  const spans: LostSpan[] = [];
  for (let i = 0; i < 1000; i++) addLostSpan(spans, i * 100, i * 100 + 20, 'late');
  expect(spans).toHaveLength(MAX_LOST_SPANS);
  expect(spans.at(-2)).toEqual({
    start_ms: (MAX_LOST_SPANS - 2) * 100,
    end_ms: (MAX_LOST_SPANS - 2) * 100 + 20,
    reason: 'late',
  });
  expect(spans.at(-1)).toEqual({ start_ms: (MAX_LOST_SPANS - 1) * 100, end_ms: 999 * 100 + 20, reason: 'late' });
});

test("the call's spans and the crash tail merge in order, the inputs untouched", () => {
  const live = [{ start_ms: 1000, end_ms: 3000, reason: 'spool write failed' }];
  const tail = [{ start_ms: 3000, end_ms: 3400, reason: 'media node lost' }];
  const early = [{ start_ms: 0, end_ms: 20, reason: 'frames arrived too late' }];
  expect(mergeLostSpans(live, tail, early)).toEqual([early[0], live[0], tail[0]]);
  expect(mergeLostSpans(live, live)).toEqual(live);
  expect(live).toEqual([{ start_ms: 1000, end_ms: 3000, reason: 'spool write failed' }]);
});
