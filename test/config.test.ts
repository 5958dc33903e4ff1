import { loadConfig } from '../src/config.js';

test('SPOOL_URL is a bucket URL like STORAGE_URL, unset by default; SPOOL_SEGMENT_SECONDS defaults to 10', () => {
  expect(loadConfig({})).toMatchObject({ spoolUrl: undefined, spoolSegmentSeconds: 10 });
  for (const url of ['file:///var/spools', 'gs://bucket/spools', 's3://bucket/spools']) expect(loadConfig({ SPOOL_URL: url }).spoolUrl).toBe(url);
  expect(loadConfig({ SPOOL_SEGMENT_SECONDS: '2.5' }).spoolSegmentSeconds).toBe(2.5);
  expect(() => loadConfig({ SPOOL_URL: 'ftp://host/spools' })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^SPOOL_URL: /) }));
  expect(() => loadConfig({ SPOOL_URL: 'spools' })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^SPOOL_URL: /) }));
  for (const bad of ['0', '-1', 'ten']) {
    expect(() => loadConfig({ SPOOL_SEGMENT_SECONDS: bad })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^SPOOL_SEGMENT_SECONDS: /) }));
  }
});

test('DRAIN_TIMEOUT_SECONDS defaults to an hour and must be a positive number', () => {
  expect(loadConfig({}).drainTimeoutMs).toBe(3_600_000);
  expect(loadConfig({ DRAIN_TIMEOUT_SECONDS: '30' }).drainTimeoutMs).toBe(30_000);
  for (const bad of ['0', '-5', 'soon']) {
    expect(() => loadConfig({ DRAIN_TIMEOUT_SECONDS: bad })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^DRAIN_TIMEOUT_SECONDS: /) }));
  }
});
