import { Validator } from '@seriousme/openapi-schema-validator';
import type { RouteOptions } from 'fastify';
import type { OpenAPIV3 } from 'openapi-types';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Not API: the reference itself, the document, and the dashboard's built files (WebSocket
 * endpoints are upgrades, not routes).
 */
const NOT_API = [/^\/docs(\/|$)/, /^\/openapi\.json$/, /^\/(index\.html)?$/, /^\/assets\//, /^\/favicon\.svg$/];

/** `/api/calls/:callId` as OpenAPI writes it: `/api/calls/{callId}`. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

describe('the OpenAPI document', () => {
  let ts: TestServer;
  const routes: RouteOptions[] = [];
  let document: OpenAPIV3.Document;

  beforeAll(async () => {
    ts = await startTestServer({ onRoute: (route) => routes.push(route) });
    const res = await fetch(`${ts.server.url}/openapi.json`);
    expect(res.status).toBe(200);
    document = (await res.json()) as OpenAPIV3.Document;
  });
  afterAll(() => ts?.close());

  test('is a valid OpenAPI 3 document', async () => {
    expect(document.openapi).toMatch(/^3\./);
    // Checked against the OpenAPI Initiative's JSON Schema for the document's version; errors name the fault.
    const result = await new Validator().validate(structuredClone(document) as unknown as Record<string, unknown>);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  test('describes every route the server registers', () => {
    const registered = routes
      // Fastify's automatic HEAD twin of each GET route is not an operation of its own.
      .filter((route) => !(route.method === 'HEAD' && routes.some((r) => r.method === 'GET' && r.url === route.url)))
      .filter((route) => !NOT_API.some((pattern) => pattern.test(route.url)))
      .flatMap((route) => [route.method].flat().map((method) => `${method} ${openApiPath(route.url)}`));
    const documented = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item!)
        .filter((key) => ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'].includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(registered.length).toBeGreaterThan(20);
    expect(new Set(documented)).toEqual(new Set(registered));
  });

  test("carries the routes' schemas: parameters, bodies, responses and how each authenticates", () => {
    const mint = document.paths['/api/calls/{callId}/recording/url']!.post!;
    expect(mint.parameters).toEqual([expect.objectContaining({ in: 'path', name: 'callId', required: true })]);
    const body = (mint.requestBody as OpenAPIV3.RequestBodyObject).content['application/json']
      .schema as OpenAPIV3.SchemaObject;
    expect(Object.keys(body.properties!)).toEqual(['format', 'download']);
    expect(mint.security).toEqual([{ apiKey: [] }]);
    const minted = (mint.responses['200'] as OpenAPIV3.ResponseObject).content!['application/json']
      .schema as OpenAPIV3.SchemaObject;
    expect(minted.required).toEqual(['url', 'expires_at']);

    const audio = document.paths['/api/calls/{callId}/recording']!.get!;
    // `?token=` is described by its security scheme rather than as a parameter.
    expect((audio.parameters as OpenAPIV3.ParameterObject[]).map((p) => `${p.in} ${p.name}`).sort()).toEqual([
      'path callId',
      'query download',
      'query format',
    ]);
    expect(audio.security).toEqual([{ apiKey: [] }, { playbackToken: [] }]);
    expect(document.components!.securitySchemes!.playbackToken).toEqual(
      expect.objectContaining({ type: 'apiKey', in: 'query', name: 'token' }),
    );
    expect(document.paths['/healthz']!.get!.security).toEqual([]);
    expect(document.components!.securitySchemes).toMatchObject({ apiKey: { type: 'http', scheme: 'bearer' } });
  });

  test('every operation has a unique operationId and declares its answers, errors in the one error schema', () => {
    const operations = Object.values(document.paths).flatMap((item) =>
      Object.values(item!).filter((op): op is OpenAPIV3.OperationObject => typeof op === 'object' && 'responses' in op),
    );
    const ids = operations.map((op) => op.operationId);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const op of operations) {
      const statuses = Object.keys(op.responses);
      // No operation is left at @fastify/swagger's undescribed 200.
      expect(statuses.some((status) => /^2\d\d$/.test(status))).toBe(true);
      if (op.operationId === 'getMetrics') continue;
      for (const range of ['4XX', '5XX']) {
        const error = (op.responses[range] as OpenAPIV3.ResponseObject).content!['application/json']
          .schema as OpenAPIV3.SchemaObject;
        expect(error).toMatchObject({
          required: ['error'],
          properties: { error: { required: ['code', 'message'], properties: { field: { type: 'string' } } } },
        });
      }
    }
  });

  test('only the API asks for a key: metrics, health checks and everything outside the API are public', () => {
    const operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item!)
        .filter(([, op]) => typeof op === 'object' && 'responses' in op)
        .map(([method, op]) => ({ path, method, op: op as OpenAPIV3.OperationObject })),
    );
    const keyless = operations
      .filter(({ op }) => op.security?.length === 0)
      .map(({ path, method }) => `${method.toUpperCase()} ${path}`);
    expect(keyless).toEqual(expect.arrayContaining(['GET /healthz', 'GET /readyz', 'GET /metrics']));
    for (const { path, op } of operations) {
      expect(op.security).toEqual(/^\/(api|agents)\//.test(path) ? expect.arrayContaining([{ apiKey: [] }]) : []);
    }
  });

  test('describes the webhooks: each event, its body and the signature headers', () => {
    const webhooks = (document as unknown as { webhooks: Record<string, { post: OpenAPIV3.OperationObject }> })
      .webhooks;
    expect(Object.keys(webhooks).sort()).toEqual([
      'recording.audio_lost',
      'recording.completed',
      'recording.deleted',
      'recording.failed',
    ]);
    const completed = webhooks['recording.completed'].post;
    expect((completed.parameters as OpenAPIV3.ParameterObject[]).map((p) => p.name)).toEqual([
      'webhook-id',
      'webhook-timestamp',
      'webhook-signature',
      'Callrec-Signature',
    ]);
    const body = (completed.requestBody as OpenAPIV3.RequestBodyObject).content['application/json']
      .schema as OpenAPIV3.SchemaObject;
    expect(body).toMatchObject({
      required: ['id', 'type', 'created_at', 'data'],
      properties: { type: { const: 'recording.completed' } },
    });
  });

  test('the interactive reference is served from this origin', async () => {
    const page = await fetch(`${ts.server.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    // Every script and stylesheet it loads is a path on this server, not another origin.
    const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(source).not.toMatch(/^(https?:)?\/\//);
      const asset = await fetch(new URL(source, page.url));
      expect(asset.status).toBe(200);
    }
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
  });
});
