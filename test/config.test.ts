import { loadConfig, STREAM_LIMIT_DEFAULTS } from '../src/config.js';

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

test('the media endpoints\' limits have defaults and refuse what is not a positive number', () => {
  expect(loadConfig({}).streams).toEqual(STREAM_LIMIT_DEFAULTS);
  expect(
    loadConfig({
      STREAM_AUTH_TIMEOUT_SECONDS: '0.5',
      STREAM_PRESTART_MESSAGES: '4',
      STREAM_PRESTART_BYTES: '1024',
      MAX_STREAMS_PER_NODE: '10',
      MAX_STREAMS_PER_TENANT: '3',
      STREAM_IDLE_TIMEOUT_SECONDS: '30',
      STREAM_AUDIO_LEAD_SECONDS: '2',
    }).streams,
  ).toEqual({ authTimeoutMs: 500, preStartMessages: 4, preStartBytes: 1024, perNode: 10, perTenant: 3, idleTimeoutMs: 30_000, audioLeadMs: 2000 });
  for (const variable of ['STREAM_AUTH_TIMEOUT_SECONDS', 'STREAM_PRESTART_MESSAGES', 'STREAM_PRESTART_BYTES', 'MAX_STREAMS_PER_NODE', 'MAX_STREAMS_PER_TENANT', 'STREAM_IDLE_TIMEOUT_SECONDS', 'STREAM_AUDIO_LEAD_SECONDS']) {
    for (const bad of ['0', '-1', 'ten']) {
      expect(() => loadConfig({ [variable]: bad })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(new RegExp(`^${variable}: `)) }));
    }
  }
});

test('DRAIN_TIMEOUT_SECONDS defaults to an hour and must be a positive number', () => {
  expect(loadConfig({}).drainTimeoutMs).toBe(3_600_000);
  expect(loadConfig({ DRAIN_TIMEOUT_SECONDS: '30' }).drainTimeoutMs).toBe(30_000);
  for (const bad of ['0', '-5', 'soon']) {
    expect(() => loadConfig({ DRAIN_TIMEOUT_SECONDS: bad })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^DRAIN_TIMEOUT_SECONDS: /) }));
  }
});

test("WORKER_PORT (callrec worker's /healthz, /readyz, /metrics) defaults to 8081 and must be a port", () => {
  expect(loadConfig({}).workerPort).toBe(8081);
  expect(loadConfig({ WORKER_PORT: '9100' }).workerPort).toBe(9100);
  for (const bad of ['-1', '65536', 'http']) {
    expect(() => loadConfig({ WORKER_PORT: bad })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^WORKER_PORT: /) }));
  }
});

test('the settings the TTS engines and the S3 client read themselves are checked at start, naming the variable', () => {
  expect(() => loadConfig({ FLITE_VOICE: 'kal16' })).not.toThrow();
  expect(() => loadConfig({ GOOGLE_TTS_VOICE: 'de-DE-Wavenet-B', GOOGLE_TTS_API_KEY: 'AIzaSyExample0123', AWS_REGION: 'eu-central-1' })).not.toThrow();
  for (const [variable, bad] of [
    ['FLITE_VOICE', 'alice'],
    ['GOOGLE_TTS_VOICE', 'Standard-C'],
    ['GOOGLE_TTS_API_KEY', 'has spaces in it'],
    ['AWS_REGION', 'us east 1'],
    ['GOOGLE_APPLICATION_CREDENTIALS', '/nonexistent/key.json'],
    ['LOG_FORMAT', 'xml'],
    ['LOG_LEVEL', 'loud'],
  ]) {
    expect(() => loadConfig({ [variable]: bad })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(new RegExp(`^${variable}: `)) }));
  }
  expect(loadConfig({}).logFormat).toBe('auto');
  expect(loadConfig({ LOG_FORMAT: 'json' }).logFormat).toBe('json');
});

test('HTTP addresses are taken as people type them: host:port gets http://', () => {
  expect(loadConfig({ PUBLIC_URL: 'rec.example.com:8443' }).publicUrl).toBe('http://rec.example.com:8443');
  expect(loadConfig({ PUBLIC_URL: 'https://rec.example.com' }).publicUrl).toBe('https://rec.example.com');
  expect(loadConfig({ STORAGE_ENDPOINT: 'minio:9000' }).storageEndpoint).toBe('http://minio:9000');
  expect(() => loadConfig({ PUBLIC_URL: 'ftp://rec.example.com' })).toThrow(expect.objectContaining({ message: expect.stringMatching(/^PUBLIC_URL: /) }));
});

test('REDIS_URL unset: the default address, which `serve` may replace with a private redis-server', () => {
  expect(loadConfig({})).toMatchObject({ redisUrl: 'redis://127.0.0.1:6379', redisUrlDefault: true });
  expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })).toMatchObject({ redisUrlDefault: false });
});

test('SIP_LISTEN turns the SIPREC server on, with SIP_PUBLIC_ADDRESS and RTP_PORTS checked', () => {
  expect(loadConfig({}).sip).toBeUndefined();
  expect(loadConfig({ SIP_LISTEN: 'udp:127.0.0.1:5060,tcp:127.0.0.1:5070' }).sip).toEqual({
    listen: [
      { protocol: 'udp', host: '127.0.0.1', port: 5060 },
      { protocol: 'tcp', host: '127.0.0.1', port: 5070 },
    ],
    publicAddress: '127.0.0.1',
    rtpPorts: { first: 40000, last: 40999 },
  });
  expect(loadConfig({ SIP_LISTEN: 'udp:0.0.0.0:5060', SIP_PUBLIC_ADDRESS: '203.0.113.5', RTP_PORTS: '20000-20100' }).sip).toMatchObject({ publicAddress: '203.0.113.5', rtpPorts: { first: 20000, last: 20100 } });
  const bad = { SIP_LISTEN: ['tls:0.0.0.0:5061', 'udp:host:5060', 'udp:127.0.0.1', 'udp:127.0.0.1:70000'], SIP_PUBLIC_ADDRESS: ['sbc.example.com'], RTP_PORTS: ['40000', '80-90', '5000-5000', '40000-70000'] };
  for (const [name, values] of Object.entries(bad)) {
    for (const value of values) {
      expect(() => loadConfig({ SIP_LISTEN: 'udp:127.0.0.1:5060', [name]: value })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(new RegExp(`^${name}: `)) }));
    }
  }
  expect(() => loadConfig({ SIP_LISTEN: 'udp:0.0.0.0:5060' })).toThrow(expect.objectContaining({ message: expect.stringMatching(/^SIP_PUBLIC_ADDRESS: must be set/) }));
});
