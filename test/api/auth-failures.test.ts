import { setTimeout as sleep } from 'node:timers/promises';
import { AuthFailures } from '../../src/auth/failures.js';

describe('AuthFailures', () => {
  test('an address within its budget may go on; past it, it waits until its window ends', async () => {
    const failures = new AuthFailures(2, 200);
    expect(failures.retryAfterMs('a')).toBe(0);
    expect(failures.fail('a')).toBe(0);
    expect(failures.fail('a')).toBe(0);
    expect(failures.retryAfterMs('a')).toBe(0);
    const wait = failures.fail('a');
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(200);
    expect(failures.retryAfterMs('a')).toBeGreaterThan(0);
    // Each address has a budget of its own.
    expect(failures.retryAfterMs('b')).toBe(0);
    expect(failures.fail('b')).toBe(0);
    await sleep(250);
    expect(failures.retryAfterMs('a')).toBe(0);
    expect(failures.fail('a')).toBe(0);
  });

  test('a flood of addresses is forgotten oldest first, so memory stays bounded', () => {
    const failures = new AuthFailures(0);
    expect(failures.fail('first')).toBeGreaterThan(0);
    for (let i = 0; i < AuthFailures.MAX_ADDRESSES; i++) failures.fail(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    expect(failures.retryAfterMs('first')).toBe(0);
    expect(failures.retryAfterMs('10.0.0.1')).toBeGreaterThan(0);
  });
});
