import { randomBytes } from 'node:crypto';
import { loadConfig, REMOTE_TIMEOUT_DEFAULTS, STREAM_LIMIT_DEFAULTS } from '../src/config.js';
import { selfSignedCertificate } from './helpers/tls.js';

test('SPOOL_URL is a bucket URL like STORAGE_URL, unset by default; SPOOL_SEGMENT_SECONDS defaults to 10', () => {
  expect(loadConfig({})).toMatchObject({ spoolUrl: undefined, spoolSegmentSeconds: 10 });
  for (const url of ['file:///var/spools', 'gs://bucket/spools', 's3://bucket/spools'])
    expect(loadConfig({ SPOOL_URL: url }).spoolUrl).toBe(url);
  expect(loadConfig({ SPOOL_SEGMENT_SECONDS: '2.5' }).spoolSegmentSeconds).toBe(2.5);
  expect(() => loadConfig({ SPOOL_URL: 'ftp://host/spools' })).toThrow(
    expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^SPOOL_URL: /) }),
  );
  expect(() => loadConfig({ SPOOL_URL: 'spools' })).toThrow(
    expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^SPOOL_URL: /) }),
  );
  for (const bad of ['0', '-1', 'ten']) {
    expect(() => loadConfig({ SPOOL_SEGMENT_SECONDS: bad })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^SPOOL_SEGMENT_SECONDS: /) }),
    );
  }
});

test("the media endpoints' limits have defaults and refuse what is not a positive number", () => {
  expect(loadConfig({}).streams).toEqual(STREAM_LIMIT_DEFAULTS);
  expect(
    loadConfig({
      STREAM_AUTH_TIMEOUT_SECONDS: '0.5',
      STREAM_PRESTART_MESSAGES: '4',
      STREAM_PRESTART_BYTES: '1024',
      MAX_STREAMS_PER_NODE: '10',
      MAX_PENDING_STREAMS_PER_IP: '7',
      MAX_STREAMS_PER_TENANT: '3',
      STREAM_IDLE_TIMEOUT_SECONDS: '30',
      STREAM_AUDIO_LEAD_SECONDS: '2',
    }).streams,
  ).toEqual({
    authTimeoutMs: 500,
    preStartMessages: 4,
    preStartBytes: 1024,
    perNode: 10,
    pendingPerAddress: 7,
    perTenant: 3,
    idleTimeoutMs: 30_000,
    audioLeadMs: 2000,
    relay: STREAM_LIMIT_DEFAULTS.relay,
  });
  for (const variable of [
    'STREAM_AUTH_TIMEOUT_SECONDS',
    'STREAM_PRESTART_MESSAGES',
    'STREAM_PRESTART_BYTES',
    'MAX_STREAMS_PER_NODE',
    'MAX_PENDING_STREAMS_PER_IP',
    'MAX_STREAMS_PER_TENANT',
    'STREAM_IDLE_TIMEOUT_SECONDS',
    'STREAM_AUDIO_LEAD_SECONDS',
  ]) {
    for (const bad of ['0', '-1', 'ten']) {
      expect(() => loadConfig({ [variable]: bad })).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(new RegExp(`^${variable}: `)) }),
      );
    }
  }
});

test('BRIDGE_RELAY_HIGH_WATER_BYTES and BRIDGE_RELAY_MAX_BYTES default to 256 KiB and 8 MiB; the mark may not exceed the cap', () => {
  expect(loadConfig({}).streams.relay).toEqual({ highWaterBytes: 262_144, maxBytes: 8_388_608 });
  expect(loadConfig({ BRIDGE_RELAY_HIGH_WATER_BYTES: '1000', BRIDGE_RELAY_MAX_BYTES: '1000' }).streams.relay).toEqual({
    highWaterBytes: 1000,
    maxBytes: 1000,
  });
  expect(() => loadConfig({ BRIDGE_RELAY_MAX_BYTES: '1000' })).toThrow(
    expect.objectContaining({
      code: 'ERR_CONFIG',
      message: expect.stringMatching(/^BRIDGE_RELAY_HIGH_WATER_BYTES: must not exceed BRIDGE_RELAY_MAX_BYTES/),
    }),
  );
  for (const variable of ['BRIDGE_RELAY_HIGH_WATER_BYTES', 'BRIDGE_RELAY_MAX_BYTES']) {
    expect(() => loadConfig({ [variable]: '0' })).toThrow(
      expect.objectContaining({ message: expect.stringMatching(new RegExp(`^${variable}: `)) }),
    );
  }
});

test("MAX_STREAMS_PER_TENANT is off by default: one tenant may use every node's MAX_STREAMS_PER_NODE (issue 22)", () => {
  expect(loadConfig({}).streams.perTenant).toBeNull();
  expect(loadConfig({ MAX_STREAMS_PER_NODE: '5000' }).streams).toMatchObject({ perNode: 5000, perTenant: null });
  expect(loadConfig({ MAX_STREAMS_PER_TENANT: '' }).streams.perTenant).toBeNull();
  expect(loadConfig({ MAX_STREAMS_PER_TENANT: '40' }).streams.perTenant).toBe(40);
});

test('DRAIN_TIMEOUT_SECONDS defaults to an hour and must be a positive number', () => {
  expect(loadConfig({}).drainTimeoutMs).toBe(3_600_000);
  expect(loadConfig({ DRAIN_TIMEOUT_SECONDS: '30' }).drainTimeoutMs).toBe(30_000);
  for (const bad of ['0', '-5', 'soon']) {
    expect(() => loadConfig({ DRAIN_TIMEOUT_SECONDS: bad })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^DRAIN_TIMEOUT_SECONDS: /) }),
    );
  }
});

test("WORKER_PORT (callrec worker's /healthz, /readyz, /metrics) defaults to 8081 and must be a port", () => {
  expect(loadConfig({}).workerPort).toBe(8081);
  expect(loadConfig({ WORKER_PORT: '9100' }).workerPort).toBe(9100);
  for (const bad of ['-1', '65536', 'http']) {
    expect(() => loadConfig({ WORKER_PORT: bad })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^WORKER_PORT: /) }),
    );
  }
});

test('the settings the TTS engines and the S3 client read themselves are checked at start, naming the variable', () => {
  expect(() => loadConfig({ FLITE_VOICE: 'kal16' })).not.toThrow();
  expect(() =>
    loadConfig({
      GOOGLE_TTS_VOICE: 'de-DE-Wavenet-B',
      GOOGLE_TTS_API_KEY: 'AIzaSyExample0123',
      AWS_REGION: 'eu-central-1',
    }),
  ).not.toThrow();
  for (const [variable, bad] of [
    ['FLITE_VOICE', 'alice'],
    ['GOOGLE_TTS_VOICE', 'Standard-C'],
    ['GOOGLE_TTS_API_KEY', 'has spaces in it'],
    ['AWS_REGION', 'us east 1'],
    ['GOOGLE_APPLICATION_CREDENTIALS', '/nonexistent/key.json'],
    ['LOG_FORMAT', 'xml'],
    ['LOG_LEVEL', 'loud'],
  ]) {
    expect(() => loadConfig({ [variable]: bad })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(new RegExp(`^${variable}: `)) }),
    );
  }
  expect(loadConfig({}).logFormat).toBe('auto');
  expect(loadConfig({ LOG_FORMAT: 'json' }).logFormat).toBe('json');
});

test('HTTP addresses are taken as people type them: host:port gets http://', () => {
  expect(loadConfig({ PUBLIC_URL: 'rec.example.com:8443' }).publicUrl).toBe('http://rec.example.com:8443');
  expect(loadConfig({ PUBLIC_URL: 'https://rec.example.com' }).publicUrl).toBe('https://rec.example.com');
  expect(loadConfig({ STORAGE_ENDPOINT: 'minio:9000' }).storageEndpoint).toBe('http://minio:9000');
  expect(() => loadConfig({ PUBLIC_URL: 'ftp://rec.example.com' })).toThrow(
    expect.objectContaining({ message: expect.stringMatching(/^PUBLIC_URL: /) }),
  );
});

test('REDIS_URL unset: the default address, which `serve` may replace with a private redis-server', () => {
  expect(loadConfig({})).toMatchObject({ redisUrl: 'redis://127.0.0.1:6379', redisUrlDefault: true });
  expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })).toMatchObject({ redisUrlDefault: false });
});

test('EGRESS_ALLOW takes addresses, CIDRs and host names; REMOTE_*_TIMEOUT_SECONDS default to 5 s and 30 s', () => {
  expect(loadConfig({})).toMatchObject({ egressAllow: [], remoteTimeouts: REMOTE_TIMEOUT_DEFAULTS });
  expect(loadConfig({ EGRESS_ALLOW: ' 127.0.0.1, 10.0.0.0/8 ,fd00::/8,runtime.internal' }).egressAllow).toEqual([
    '127.0.0.1',
    '10.0.0.0/8',
    'fd00::/8',
    'runtime.internal',
  ]);
  for (const bad of ['10.0.0.0/33', 'http://runtime', '1.2.3', 'a b']) {
    expect(() => loadConfig({ EGRESS_ALLOW: bad })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^EGRESS_ALLOW: /) }),
    );
  }
  expect(
    loadConfig({ REMOTE_CONNECT_TIMEOUT_SECONDS: '2', REMOTE_REQUEST_TIMEOUT_SECONDS: '10' }).remoteTimeouts,
  ).toEqual({ connectMs: 2000, requestMs: 10_000 });
  for (const variable of ['REMOTE_CONNECT_TIMEOUT_SECONDS', 'REMOTE_REQUEST_TIMEOUT_SECONDS']) {
    expect(() => loadConfig({ [variable]: '0' })).toThrow(
      expect.objectContaining({ message: expect.stringMatching(new RegExp(`^${variable}: `)) }),
    );
  }
});

test('CALLREC_API_KEY must be at least 32 random bytes: short or repetitive keys are refused at start, naming the variable', () => {
  for (const good of [
    randomBytes(32).toString('base64'),
    randomBytes(32).toString('base64url'),
    randomBytes(32).toString('hex'),
    `crk_${randomBytes(32).toString('base64url')}`,
  ]) {
    expect(loadConfig({ CALLREC_API_KEY: good }).apiKey).toBe(good);
  }
  for (const [bad, why] of [
    ['CHANGE-ME-16-CHARACTERS-OR-MORE', /too short/],
    ['operator-secret-123', /too short/],
    [randomBytes(16).toString('hex'), /too short/],
    [randomBytes(24).toString('base64url'), /too short/],
    ['correct horse battery staple is my operator key ok', /too short/],
    ['a'.repeat(200), /repeats itself/],
    ['abcd'.repeat(40), /repeats itself/],
    ['Passw0rd!'.repeat(8), /repeats itself/],
  ] as const) {
    expect(() => loadConfig({ CALLREC_API_KEY: bad })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG',
        message: expect.stringMatching(/^CALLREC_API_KEY: must be at least 32 random bytes/),
      }),
    );
    expect(() => loadConfig({ CALLREC_API_KEY: bad })).toThrow(why);
  }
});

test('METRICS_PORT is unset by default (the API port serves /metrics and /readyz) and must be a port', () => {
  expect(loadConfig({}).metricsPort).toBeUndefined();
  expect(loadConfig({ METRICS_PORT: '9090' }).metricsPort).toBe(9090);
  for (const bad of ['-1', '65536', 'metrics']) {
    expect(() => loadConfig({ METRICS_PORT: bad })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/^METRICS_PORT: /) }),
    );
  }
});

test('Flite pool, prompt and transcode limits have defaults and refuse what is not a positive number', () => {
  expect(loadConfig({})).toMatchObject({
    flite: { workers: 2, maxQueued: 100, maxWaitMs: 10_000 },
    promptsPerTenantPerHour: 20,
    transcodes: { perNode: 4, perTenant: 2 },
  });
  expect(
    loadConfig({
      FLITE_WORKERS: '4',
      FLITE_QUEUE_MAX: '10',
      FLITE_QUEUE_WAIT_SECONDS: '2.5',
      CONSENT_PROMPTS_PER_TENANT_PER_HOUR: '5',
      MAX_TRANSCODES: '1',
    }),
  ).toMatchObject({
    flite: { workers: 4, maxQueued: 10, maxWaitMs: 2500 },
    promptsPerTenantPerHour: 5,
    transcodes: { perNode: 1, perTenant: 1 },
  });
  expect(() => loadConfig({ MAX_TRANSCODES: '2', MAX_TRANSCODES_PER_TENANT: '3' })).toThrow(
    expect.objectContaining({
      message: expect.stringMatching(/^MAX_TRANSCODES_PER_TENANT: must not exceed MAX_TRANSCODES \(2\)/),
    }),
  );
  for (const variable of [
    'FLITE_WORKERS',
    'FLITE_QUEUE_MAX',
    'FLITE_QUEUE_WAIT_SECONDS',
    'CONSENT_PROMPTS_PER_TENANT_PER_HOUR',
    'MAX_TRANSCODES',
    'MAX_TRANSCODES_PER_TENANT',
  ]) {
    expect(() => loadConfig({ [variable]: '0' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(new RegExp(`^${variable}: `)) }),
    );
  }
});

test('SIP_LISTEN turns the SIPREC server on, with SIP_PUBLIC_ADDRESS, RTP_PORTS and SIP_MIN_SE checked', () => {
  expect(loadConfig({}).sip).toBeUndefined();
  expect(loadConfig({ SIP_LISTEN: 'udp:127.0.0.1:5060,tcp:127.0.0.1:5070' }).sip).toEqual({
    listen: [
      { protocol: 'udp', host: '127.0.0.1', port: 5060 },
      { protocol: 'tcp', host: '127.0.0.1', port: 5070 },
    ],
    publicAddress: '127.0.0.1',
    rtpPorts: { first: 40000, last: 40999 },
    minSessionExpires: 90,
  });
  expect(
    loadConfig({ SIP_LISTEN: 'udp:0.0.0.0:5060', SIP_PUBLIC_ADDRESS: '203.0.113.5', RTP_PORTS: '20000-20100' }).sip,
  ).toMatchObject({ publicAddress: '203.0.113.5', rtpPorts: { first: 20000, last: 20100 } });
  expect(loadConfig({ SIP_LISTEN: 'udp:127.0.0.1:5060', SIP_MIN_SE: '1800' }).sip?.minSessionExpires).toBe(1800);
  const bad = {
    SIP_LISTEN: ['sctp:0.0.0.0:5061', 'udp:host:5060', 'udp:127.0.0.1', 'udp:127.0.0.1:70000'],
    SIP_PUBLIC_ADDRESS: ['sbc.example.com'],
    RTP_PORTS: ['40000', '80-90', '5000-5000', '40000-70000'],
    SIP_MIN_SE: ['0', '90s', '100000'],
  };
  for (const [name, values] of Object.entries(bad)) {
    for (const value of values) {
      expect(() => loadConfig({ SIP_LISTEN: 'udp:127.0.0.1:5060', [name]: value })).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(new RegExp(`^${name}: `)) }),
      );
    }
  }
  expect(() => loadConfig({ SIP_LISTEN: 'udp:0.0.0.0:5060' })).toThrow(
    expect.objectContaining({ message: expect.stringMatching(/^SIP_PUBLIC_ADDRESS: must be set/) }),
  );
});

test('a tls: listener needs SIP_TLS_CERT and SIP_TLS_KEY naming a readable, matching PEM pair', async () => {
  const pair = await selfSignedCertificate();
  const other = await selfSignedCertificate();
  try {
    const env = {
      SIP_LISTEN: 'udp:127.0.0.1:5060,tls:127.0.0.1:5061',
      SIP_TLS_CERT: pair.certFile,
      SIP_TLS_KEY: pair.keyFile,
    };
    expect(loadConfig(env).sip).toMatchObject({
      listen: [
        { protocol: 'udp', host: '127.0.0.1', port: 5060 },
        { protocol: 'tls', host: '127.0.0.1', port: 5061 },
      ],
      tls: { cert: pair.cert, key: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/) },
    });
    // Without a tls: listener the files are not needed.
    expect(loadConfig({ SIP_LISTEN: 'udp:127.0.0.1:5060' }).sip?.tls).toBeUndefined();
    for (const [change, message] of [
      [{ SIP_TLS_CERT: undefined }, /^SIP_TLS_CERT: must name the PEM certificate/],
      [{ SIP_TLS_KEY: '' }, /^SIP_TLS_KEY: must name the PEM private key/],
      [{ SIP_TLS_KEY: `${pair.keyFile}.missing` }, /^SIP_TLS_KEY: cannot read ".*key\.pem\.missing"/],
      [{ SIP_TLS_KEY: other.keyFile }, /^SIP_TLS_CERT: and SIP_TLS_KEY are not a PEM certificate and its private key/],
      [{ SIP_TLS_CERT: pair.keyFile }, /^SIP_TLS_CERT: and SIP_TLS_KEY are not/],
    ] as const) {
      expect(() => loadConfig({ ...env, ...change })).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(message) }),
      );
    }
  } finally {
    await pair.remove();
    await other.remove();
  }
});
