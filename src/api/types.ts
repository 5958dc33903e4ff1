import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { AuthFailures } from '../auth/failures.js';
import type { CallControl } from '../calls/control.js';
import type { TelnyxConfig } from '../config.js';
import type { HttpLimits } from '../config.js';
import type { MasterKeyring } from '../crypto/keys.js';
import type { EgressPolicy } from '../net/egress.js';
import type { TranscodeCache } from '../recording/transcode-cache.js';
import type { StorageResolver } from '../storage/resolver.js';
import type { Store } from '../store/index.js';
import type { WebhookContext } from '../webhooks/index.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';

/** What the API needs from the rest of the server. */
export interface ApiDeps {
  store: Store;
  /** Which object store holds each recording. */
  storage: StorageResolver;
  /** What URLs in tenants' and agents' settings may name (checked at PATCH). */
  egress: EgressPolicy;
  /** Unwraps recordings' data keys to decrypt them on the fly. */
  keyring: MasterKeyring;
  /** Recordings asked for in another format than stored. */
  transcodes: TranscodeCache;
  /** `recording.deleted` goes out through it. */
  webhooks: WebhookContext;
  /** Recording control of live calls, whichever node holds them. */
  control: CallControl;
  /** Telnyx credentials for the dashboard's test call; absent when not configured. */
  telnyx?: TelnyxConfig;
  /** Each dependency's reachability (`db`, `redis`, `storage`…) for `/readyz`; absent, `/readyz` is served elsewhere (METRICS_PORT). */
  readiness?: () => Promise<Record<string, boolean>>;
  /** Whether the node is draining (SIGTERM): `/readyz` then answers 503 `draining` at once. */
  draining?: () => boolean;
  /** Rate limits; `HTTP_LIMIT_DEFAULTS` when absent. */
  limits?: HttpLimits;
  /** The failure budget per client address, shared with the media endpoints; one of `limits` when absent. */
  authFailures?: AuthFailures;
}

export type ApiInstance = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;
