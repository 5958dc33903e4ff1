import type { FastifyPluginAsync } from 'fastify';
import { AuthFailures } from '../auth/failures.js';
import { PlaybackTokens } from '../auth/playback.js';
import { authPlugin } from '../auth/plugin.js';
import { HTTP_LIMIT_DEFAULTS } from '../config.js';
import { agentRoutes } from './agents.js';
import { callRoutes } from './calls.js';
import { controlRoutes } from './control.js';
import { declareErrorResponses, errorHandler, notFoundHandler } from './errors.js';
import { evidenceRoutes } from './evidence.js';
import { Evidence } from '../evidence/index.js';
import { healthRoutes } from './health.js';
import { keyRoutes } from './keys.js';
import { meRoutes } from './me.js';
import { recordingRoutes } from './recordings.js';
import { tenantRoutes } from './tenants.js';
import { testCallRoutes } from './test-call.js';
import { validatorCompiler } from './validation.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ApiDeps } from './types.js';

export type { ApiDeps } from './types.js';
export { errorHandler, notFoundHandler } from './errors.js';

/**
 * The HTTP API (SPEC §3): health, agents, calls, recordings, call control, keys, tenants, and
 * what the dashboard needs besides (the caller's key, the browser test call). Register it at the root; its
 * authentication, validation and error format apply to its own routes only, so the server's
 * other routes (WebSocket, dashboard, metrics) keep theirs.
 */
export const apiPlugin: FastifyPluginAsync<ApiDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.addHook('onRoute', declareErrorResponses);
  const playback = new PlaybackTokens(deps.keyring);
  const limits = deps.limits ?? HTTP_LIMIT_DEFAULTS;
  const failures = deps.authFailures ?? new AuthFailures(limits.authFailuresPerIpPerMinute);
  await app.register(authPlugin, { keys: deps.store.keys, playback, limits, failures });
  healthRoutes(app, deps);
  agentRoutes(app, deps);
  callRoutes(app, deps);
  const evidence = new Evidence(deps.store, deps.keyring);
  recordingRoutes(app, deps, playback, evidence);
  evidenceRoutes(app, deps, evidence);
  controlRoutes(app, deps);
  keyRoutes(app, deps);
  meRoutes(app, deps);
  tenantRoutes(app, deps);
  testCallRoutes(app, deps);
};
