/** A scheme typed before the address (`http://`, `wss://`…); `localhost:8080` has none, though `new URL` would read `localhost:` as one. */
const HAS_SCHEME = /^[a-z][a-z\d+.-]*:\/\//i;

/** An address as people type it, with `scheme://` put before it when it has no scheme (`host:port`, a bare host). */
export function withScheme(raw: string, scheme: 'http' | 'ws'): string {
  const text = raw.trim();
  return HAS_SCHEME.test(text) ? text : `${scheme}://${text}`;
}

/** `withScheme`, parsed; null when it is no URL. */
export function parseUserUrl(raw: string, scheme: 'http' | 'ws'): URL | null {
  if (raw.trim() === '') return null;
  try {
    return new URL(withScheme(raw, scheme));
  } catch {
    return null;
  }
}
