import type { AdapterFactory, Provider } from './types.js';
import { genesys } from './genesys.js';
import { telnyx } from './telnyx.js';
import { twilio } from './twilio.js';
import { vonage } from './vonage.js';

/** One adapter factory per provider endpoint (`/media/{provider}`). */
export const adapters: Record<Provider, AdapterFactory> = { twilio, telnyx, vonage, genesys };

export { TELNYX_AUTH_HEADER } from './telnyx.js';
export { AUDIOHOOK_KEY_HEADER } from './genesys.js';
