import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, RouteOptions } from 'fastify';

/** Where the interactive reference is served (its assets under it, from this origin). */
export const DOCS_PREFIX = '/docs';

/** Groups operations by what they act on: the path's first segment after `/api`. */
function tagOf(url: string): string {
  const [first, second] = url.split('/').filter(Boolean);
  if (first === 'api') return second;
  return first === 'agents' ? 'agents' : 'operations';
}

/** How a route authenticates, as OpenAPI `security`: none for public routes; a playback token where one is taken. */
function securityOf(route: RouteOptions): Record<string, string[]>[] {
  const config = (route.config ?? {}) as { public?: boolean; playbackToken?: boolean };
  if (config.public) return [];
  return config.playbackToken ? [{ apiKey: [] }, { playbackToken: [] }] : [{ apiKey: [] }];
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
      info: {
        title: 'callrec',
        // The contract's version (SPEC §3), not the package's: it changes when the API does.
        version: '1',
        description: 'Call recording media server: agents, calls, encrypted recordings, keys and tenants. Errors are `{"error": {"code", "message", "field"?}}`.',
      },
      // Relative: the reference's "try it" calls the origin that served it, whatever PUBLIC_URL says.
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'An API key: Authorization: Bearer <key>' },
          playbackToken: { type: 'apiKey', in: 'query', name: 'token', description: 'A playback token from POST /api/calls/{call_id}/recording/url' },
        },
      },
    },
    transform: ({ schema, url, route }) => ({
      schema: { ...schema, tags: [tagOf(url)], security: securityOf(route) } as typeof schema,
      url,
    }),
  });
  await app.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX, staticCSP: true, uiConfig: { deepLinking: true, tryItOutEnabled: true } });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
