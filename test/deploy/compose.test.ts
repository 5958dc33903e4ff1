import { existsSync } from 'node:fs';
import path from 'node:path';
import { allDocs, docSection, FINALIZE_MARGIN_SECONDS, ROOT, readText, readYaml } from './files.js';

const compose = readYaml('docker-compose.yml');
const services: Record<string, any> = compose.services;
const MEDIA = ['media-1', 'media-2'];
const CALLREC = [...MEDIA, 'worker'];
/** What every node of a cluster must share (README "Running several nodes"). */
const SHARED = [
  'DATABASE_URL',
  'REDIS_URL',
  'CALLREC_QUEUE_PREFIX',
  'STORAGE_URL',
  'SPOOL_URL',
  'STORAGE_ENDPOINT',
  'CALLREC_MASTER_KEY',
  'DRAIN_TIMEOUT_SECONDS',
];

/** Compose durations as this file writes them: `3660s`, `5m`. */
function seconds(duration: string): number {
  const match = /^(\d+)(s|m)$/.exec(duration);
  if (!match) throw new Error(`unexpected duration "${duration}"`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

describe('docker-compose.yml', () => {
  test('has two media nodes, a worker, the proxy, Redis, PostgreSQL, the bucket and its init', () => {
    expect(Object.keys(services).sort()).toEqual([
      'bucket-init',
      'media-1',
      'media-2',
      'minio',
      'postgres',
      'proxy',
      'redis',
      'worker',
    ]);
    for (const name of MEDIA) expect(services[name].command).toEqual(['serve']);
    expect(services.worker.command).toEqual(['worker']);
    for (const name of CALLREC) expect(services[name].build).toBe('.');
  });

  test('every callrec process shares the database, Redis prefix, bucket(s) and master key', () => {
    for (const variable of SHARED) {
      const values = new Set(CALLREC.map((name) => services[name].environment[variable]));
      expect([variable, values.size]).toEqual([variable, 1]);
      expect([variable, [...values][0]]).toEqual([variable, expect.any(String)]);
    }
    const env = services['media-1'].environment;
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
    expect(env.REDIS_URL).toBe('redis://redis:6379');
    expect(env.STORAGE_ENDPOINT).toBe('http://minio:9000');
    expect(env.CALLREC_MASTER_KEY).toMatch(/^\$\{CALLREC_MASTER_KEY:\?/);
  });

  test('recordings and spools go to the bucket the init container creates', () => {
    const created = /mc mb --ignore-existing local\/([\w.-]+)/.exec(services['bucket-init'].command.join(' '))?.[1];
    const env = services['media-1'].environment;
    expect(new URL(env.STORAGE_URL).host).toBe(created);
    expect(new URL(env.SPOOL_URL).host).toBe(created);
    expect(env.SPOOL_URL).not.toBe(env.STORAGE_URL);
    for (const name of CALLREC)
      expect(services[name].depends_on['bucket-init']).toEqual({ condition: 'service_completed_successfully' });
  });

  test('each media node has a DATA_DIR volume of its own', () => {
    const mounts = MEDIA.map((name) => services[name].volumes as string[]);
    for (const [volume] of mounts) {
      const [source, target] = volume.split(':');
      expect(target).toBe(services['media-1'].environment.DATA_DIR);
      expect(Object.keys(compose.volumes)).toContain(source);
      const users = Object.keys(services).filter((name) =>
        (services[name].volumes ?? []).some((v: string) => v.split(':')[0] === source),
      );
      expect(users).toHaveLength(1);
    }
    expect(new Set(mounts.map(([volume]) => volume)).size).toBe(MEDIA.length);
  });

  test('media nodes get SIGTERM and the drain timeout plus the finalize margin before they are killed', () => {
    for (const name of MEDIA) {
      const service = services[name];
      expect(service.stop_signal).toBe('SIGTERM');
      expect(seconds(service.stop_grace_period)).toBe(
        Number(service.environment.DRAIN_TIMEOUT_SECONDS) + FINALIZE_MARGIN_SECONDS,
      );
    }
    expect(services.worker.stop_signal).toBe('SIGTERM');
    expect(seconds(services.worker.stop_grace_period)).toBeGreaterThanOrEqual(60);
  });

  test("long-running services have healthchecks; the worker's asks its own listener (WORKER_PORT)", () => {
    for (const name of ['media-1', 'media-2', 'worker', 'proxy', 'postgres', 'redis', 'minio']) {
      expect([name, services[name].healthcheck?.test?.[0]]).toEqual([name, 'CMD']);
    }
    for (const name of MEDIA) expect(services[name].healthcheck.test.join(' ')).toContain('/healthz');
    expect(services.worker.healthcheck.test.join(' ')).toContain('http://127.0.0.1:8081/healthz');
  });

  test('services wait only for services that exist, and for the health they report', () => {
    for (const [name, service] of Object.entries<any>(services)) {
      for (const [dependency, { condition }] of Object.entries<any>(service.depends_on ?? {})) {
        expect([name, dependency, dependency in services]).toEqual([name, dependency, true]);
        if (condition === 'service_healthy') expect(services[dependency].healthcheck?.test).toBeDefined();
      }
    }
  });

  test('the proxy passes WebSocket upgrades to both media nodes and keeps a call open through a drain', () => {
    const [config, target] = (services.proxy.volumes[0] as string).split(':');
    expect(target).toBe('/etc/nginx/nginx.conf');
    expect(existsSync(path.join(ROOT, config))).toBe(true);
    const nginx = readText(config);
    expect(nginx).toMatch(/proxy_http_version 1\.1;/);
    expect(nginx).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(nginx).toMatch(/proxy_set_header Connection \$connection_upgrade;/);
    expect(nginx).toMatch(/map \$http_upgrade \$connection_upgrade \{\s*default upgrade;/);
    const upstreams = [...nginx.matchAll(/^\s*server ([\w-]+):(\d+)\b/gm)].map((m) => `${m[1]}:${m[2]}`);
    expect(upstreams.sort()).toEqual(MEDIA.map((name) => `${name}:8080`));
    const readTimeout = Number(/proxy_read_timeout (\d+)s;/.exec(nginx)?.[1]);
    expect(readTimeout).toBeGreaterThanOrEqual(Number(services['media-1'].environment.DRAIN_TIMEOUT_SECONDS));
    expect(nginx).toMatch(/proxy_next_upstream [^;]*http_503/);
  });

  test("only the proxy's address is trusted for X-Forwarded-For", () => {
    expect(services['media-1'].environment.TRUST_PROXY).toBe(services.proxy.networks.callrec.ipv4_address);
  });

  test('env.example names every secret the file requires', () => {
    const required = new Set([...readText('docker-compose.yml').matchAll(/\$\{(\w+):\?/g)].map((m) => m[1]));
    const listed = new Set([...readText('deploy/compose/env.example').matchAll(/^(\w+)=/gm)].map((m) => m[1]));
    expect(required.size).toBeGreaterThan(0);
    expect([...listed].sort()).toEqual([...required].sort());
  });
});

describe('docs/operations.md "Running a node"', () => {
  const operations = docSection('docs/operations.md', 'Running a node');

  test('gives the grace period the files use and the commands that start them', () => {
    const drain = Number(services['media-1'].environment.DRAIN_TIMEOUT_SECONDS);
    expect(operations).toContain(
      `the drain timeout plus ${FINALIZE_MARGIN_SECONDS} s (${drain + FINALIZE_MARGIN_SECONDS} s)`,
    );
    expect(operations).toContain('docker compose --env-file deploy/compose/.env up --build');
    expect(readText('docker-compose.yml')).toContain('docker compose --env-file deploy/compose/.env up --build');
    expect(operations).toContain('cp deploy/compose/env.example deploy/compose/.env');
  });

  test('documents every metric a node serves, and says how to probe and scrape it', async () => {
    const { MediaMetrics } = await import('../../src/metrics.js');
    const served = (await new MediaMetrics().registry.getMetricsAsJSON())
      .map((metric) => metric.name)
      .filter((name) => name.startsWith('callrec_'));
    expect(served.length).toBeGreaterThan(5);
    const docs = allDocs();
    for (const name of served) expect([name, docs.includes(`\`${name}`)]).toEqual([name, true]);
    for (const route of ['GET /healthz', 'GET /readyz', 'GET /metrics']) expect(operations).toContain(route);
  });
});
