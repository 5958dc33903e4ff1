import type { AdapterFactory, Provider } from './types.js';
import { bandwidth } from './bandwidth.js';
import { exotel } from './exotel.js';
import { plivo } from './plivo.js';
import { asterisk } from './asterisk.js';
import { azure } from './azure.js';
import { freeswitch } from './freeswitch.js';
import { jambonz } from './jambonz.js';
import { genesys } from './genesys.js';
import { telnyx } from './telnyx.js';
import { signalwire, twilio } from './twilio.js';
import { vonage } from './vonage.js';

/** One adapter factory per provider endpoint (`/media/{provider}`). */
export const adapters: Record<Provider, AdapterFactory> = {
  twilio,
  telnyx,
  vonage,
  signalwire,
  plivo,
  exotel,
  bandwidth,
  jambonz,
  freeswitch,
  asterisk,
  azure,
  genesys,
};

export { TELNYX_AUTH_HEADER } from './telnyx.js';
export { AUDIOHOOK_KEY_HEADER } from './genesys.js';
