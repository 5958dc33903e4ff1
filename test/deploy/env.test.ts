import { readYaml, readYamlDocuments, variablesReadBySource } from './files.js';

/** Read by the AWS SDK's credential chain, not by our code: src/storage/s3.ts passes no credentials of its own. */
const READ_BY_LIBRARIES = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);

function composeVariables(): Map<string, string> {
  const compose = readYaml('docker-compose.yml');
  const used = new Map<string, string>();
  for (const [name, service] of Object.entries<any>(compose.services)) {
    if (service.image !== 'callrec:local') continue;
    for (const variable of Object.keys(service.environment ?? {})) used.set(variable, `docker-compose.yml ${name}`);
  }
  return used;
}

function kubernetesVariables(): Map<string, string> {
  const used = new Map<string, string>();
  for (const file of ['configmap.yaml', 'secret.example.yaml', 'media.yaml', 'worker.yaml']) {
    for (const doc of readYamlDocuments(`deploy/k8s/${file}`)) {
      const where = `deploy/k8s/${file} ${doc.kind}/${doc.metadata.name}`;
      for (const variable of Object.keys(doc.data ?? doc.stringData ?? {})) used.set(variable, where);
      for (const container of doc.spec?.template?.spec?.containers ?? []) {
        for (const { name } of container.env ?? []) used.set(name, where);
      }
    }
  }
  return used;
}

describe('deployment files set only variables callrec reads', () => {
  const read = variablesReadBySource();

  test.each([
    ['docker-compose.yml', composeVariables],
    ['deploy/k8s', kubernetesVariables],
  ])('%s', (_name, collect) => {
    const used = collect();
    expect(used.size).toBeGreaterThan(10);
    const unknown = [...used].filter(([variable]) => !read.has(variable) && !READ_BY_LIBRARIES.has(variable));
    expect(unknown).toEqual([]);
  });
});
