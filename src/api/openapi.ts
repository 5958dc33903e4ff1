import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { OpenAPIV3, OpenAPIV3_1 } from 'openapi-types';
import {
  RecordingEventDataSchema,
  WEBHOOK_EVENTS,
  webhookEventSchema,
  type WebhookEventType,
} from '../webhooks/index.js';

/** Where the interactive reference is served (its assets under it, from this origin). */
export const DOCS_PREFIX = '/docs';

/** Groups operations by what they act on: the path's first segment after `/api`. */
function tagOf(url: string): string {
  const [first, second] = url.split('/').filter(Boolean);
  if (first === 'api') return second;
  return first === 'agents' ? 'agents' : 'operations';
}

const header = (name: string, description: string) => ({
  name,
  in: 'header' as const,
  required: true,
  schema: { type: 'string' as const },
  description,
});

/** The events a tenant's `webhook_url` receives, as OpenAPI 3.1 `webhooks`: body and signature headers. */
function webhooks(): Record<string, OpenAPIV3_1.PathItemObject> {
  const parameters = [
    header('webhook-id', 'the event id, the same on every retry'),
    header('webhook-timestamp', 'unix seconds of this attempt'),
    header(
      'webhook-signature',
      'v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>"> (Standard Webhooks); present when the tenant has a webhook_secret',
    ),
    header(
      'Callrec-Signature',
      't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>"> with the secret; present when the tenant has a webhook_secret',
    ),
  ];
  return Object.fromEntries(
    (Object.keys(WEBHOOK_EVENTS) as WebhookEventType[]).map((type) => [
      type,
      {
        post: {
          operationId: `on${type
            .split(/[._]/)
            .map((word) => word[0].toUpperCase() + word.slice(1))
            .join('')}`,
          summary: WEBHOOK_EVENTS[type],
          parameters,
          // openapi-types' 3.1 media type takes its 3.0 schema type.
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: webhookEventSchema(type, RecordingEventDataSchema) as OpenAPIV3.SchemaObject,
              },
            },
          },
          responses: {
            '2XX': {
              description:
                'received; anything else (or no answer in 10 s) is retried with backoff for about 10 minutes',
            },
          },
        },
      },
    ]),
  );
}

/**
 * The API described where people look for it: `GET /openapi.json`, generated from the routes'
 * TypeBox schemas, and an interactive reference at `/docs` whose assets are served from this
 * origin (no CDN). Register it on the root instance before any route, so that it sees them all.
 */
// biome-ignore lint/suspicious/noExplicitAny: accepts the instance whatever its server, request, reply and logger types.
export async function registerOpenApi(app: FastifyInstance<any, any, any, any>): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      // 3.1: its schemas are JSON Schema, as the routes' TypeBox schemas are (`const`, `type: "null"`).
      openapi: '3.1.0',
      info: {
        title: 'callrec',
        // The contract's version (SPEC §3), not the package's: it changes when the API does.
        version: '1',
        description:
          'Call recording media server: agents, calls, encrypted recordings, keys and tenants. Errors are `{"error": {"code", "message", "field"?}}`.',
      },
      webhooks: webhooks(),
      // Relative: the reference's "try it" calls the origin that served it, whatever PUBLIC_URL says.
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'An API key: Authorization: Bearer <key>' },
          playbackToken: {
            type: 'apiKey',
            in: 'query',
            name: 'token',
            description: 'A playback token from POST /api/calls/{call_id}/recording/url',
          },
        },
      },
    },
    // A route declares `security` when it needs a key (the auth plugin sets it); every other route is public.
    transform: ({ schema, url }) => ({
      schema: { ...schema, tags: [tagOf(url)], security: schema?.security ?? [] } as typeof schema,
      url,
    }),
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: true,
    uiConfig: { deepLinking: true, tryItOutEnabled: true },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
