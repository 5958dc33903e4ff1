import { readdirSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { FINALIZE_MARGIN_SECONDS, ROOT, readText, readYaml, readYamlDocuments } from './files.js';

const DIR = 'deploy/k8s';
const files = readdirSync(path.join(ROOT, DIR)).filter((file) => file.endsWith('.yaml'));
const resources = files
  .filter((file) => file !== 'kustomization.yaml')
  .flatMap((file) => readYamlDocuments(`${DIR}/${file}`));

function find(kind: string, name: string): any {
  const found = resources.find((doc) => doc.kind === kind && doc.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in ${DIR}`);
  return found;
}

/** Whether a `matchLabels` selector selects pods with these labels. */
function selects(matchLabels: Record<string, string>, labels: Record<string, string>): boolean {
  return (
    Object.keys(matchLabels).length > 0 && Object.entries(matchLabels).every(([key, value]) => labels[key] === value)
  );
}

const media = find('Deployment', 'callrec-media');
const worker = find('Deployment', 'callrec-worker');
const config = find('ConfigMap', 'callrec');
const mediaPod = media.spec.template;

describe('deploy/k8s', () => {
  test('every manifest is YAML with apiVersion, kind and metadata.name, and kustomization lists them all', () => {
    expect(resources.length).toBeGreaterThanOrEqual(6);
    for (const doc of resources) {
      expect(doc).toEqual(
        expect.objectContaining({
          apiVersion: expect.any(String),
          kind: expect.any(String),
          metadata: expect.objectContaining({ name: expect.any(String) }),
        }),
      );
    }
    const kustomization = readYaml(`${DIR}/kustomization.yaml`);
    expect(kustomization.kind).toBe('Kustomization');
    expect([...kustomization.resources].sort()).toEqual(files.filter((file) => file !== 'kustomization.yaml').sort());
  });

  test('media pods serve streams and workers take the shared work, both from the same ConfigMap and Secret', () => {
    expect(mediaPod.spec.containers[0].args).toEqual(['serve']);
    expect(worker.spec.template.spec.containers[0].args[0]).toBe('worker');
    for (const deployment of [media, worker]) {
      expect(selects(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
      for (const container of deployment.spec.template.spec.containers) {
        const sources = container.envFrom.map((from: any) =>
          from.configMapRef ? `ConfigMap/${from.configMapRef.name}` : `Secret/${from.secretRef.name}`,
        );
        expect(sources.sort()).toEqual(['ConfigMap/callrec', 'Secret/callrec']);
        for (const source of sources) find(source.split('/')[0], source.split('/')[1]);
        expect(container.resources.requests).toEqual({ cpu: expect.anything(), memory: expect.any(String) });
        expect(container.resources.limits.memory).toEqual(expect.any(String));
      }
    }
  });

  test('every node of the cluster shares the database, Redis, bucket(s) and master key', () => {
    const secret = find('Secret', 'callrec');
    for (const variable of ['REDIS_URL', 'CALLREC_QUEUE_PREFIX', 'STORAGE_URL', 'SPOOL_URL'])
      expect(config.data[variable]).toEqual(expect.any(String));
    for (const variable of ['DATABASE_URL', 'CALLREC_MASTER_KEY'])
      expect(secret.stringData[variable]).toEqual(expect.any(String));
  });

  test('media pods: ready by /readyz, alive by /healthz, each with a DATA_DIR of its own', () => {
    const [container] = mediaPod.spec.containers;
    const port = container.ports.find((p: any) => p.name === 'http');
    expect(port.containerPort).toBe(8080);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    const dataDir = container.env.find((e: any) => e.name === 'DATA_DIR').value;
    const mount = container.volumeMounts.find((m: any) => m.mountPath === dataDir);
    const volume = mediaPod.spec.volumes.find((v: any) => v.name === mount.name);
    expect(volume.emptyDir).toBeDefined();
  });

  test('worker pods: ready by /readyz, alive by /healthz, scraped, all on WORKER_PORT (8081 by default)', () => {
    const { template } = worker.spec;
    const [container] = template.spec.containers;
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8081 }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(template.metadata.annotations).toEqual({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '8081',
      'prometheus.io/path': '/metrics',
    });
    expect(loadConfig({}).workerPort).toBe(8081);
  });

  test('terminationGracePeriodSeconds is DRAIN_TIMEOUT_SECONDS plus the finalize margin', () => {
    expect(mediaPod.spec.terminationGracePeriodSeconds).toBe(
      Number(config.data.DRAIN_TIMEOUT_SECONDS) + FINALIZE_MARGIN_SECONDS,
    );
    expect(worker.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
  });

  test('the PodDisruptionBudget covers the media pods and no others', () => {
    const pdb = resources.find((doc) => doc.kind === 'PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(selects(pdb.spec.selector.matchLabels, mediaPod.metadata.labels)).toBe(true);
    expect(selects(pdb.spec.selector.matchLabels, worker.spec.template.metadata.labels)).toBe(false);
    expect(pdb.spec.maxUnavailable ?? media.spec.replicas - pdb.spec.minAvailable).toBeLessThan(media.spec.replicas);
  });

  test('the Service sends traffic to media pods only, on their http port', () => {
    const service = find('Service', 'callrec-media');
    expect(selects(service.spec.selector, mediaPod.metadata.labels)).toBe(true);
    expect(selects(service.spec.selector, worker.spec.template.metadata.labels)).toBe(false);
    expect(service.spec.ports[0].targetPort).toBe('http');
  });

  test("pods run as the image's unprivileged user", () => {
    const user = /^USER (\d+)/m.exec(readText('Dockerfile'))?.[1];
    for (const deployment of [media, worker]) {
      expect(deployment.spec.template.spec.securityContext).toEqual(
        expect.objectContaining({ runAsNonRoot: true, runAsUser: Number(user) }),
      );
    }
  });
});
