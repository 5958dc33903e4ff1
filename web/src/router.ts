import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/calls/{id}`, `#/agents`, `#/agents/{id}`): paths like `/agents/{id}` are API
 * routes on this same origin, so the pages live in the fragment, which a reload keeps.
 */
export type Route =
  | { page: 'calls' }
  | { page: 'call'; callId: string }
  | { page: 'agents' }
  | { page: 'agent'; agentId: string };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'calls' && parts[1]) return { page: 'call', callId: parts[1] };
  if (parts[0] === 'agents' && parts[1]) return { page: 'agent', agentId: parts[1] };
  if (parts[0] === 'agents') return { page: 'agents' };
  return { page: 'calls' };
}

export const href = {
  calls: () => '#/calls',
  call: (id: string) => `#/calls/${encodeURIComponent(id)}`,
  agents: () => '#/agents',
  agent: (id: string) => `#/agents/${encodeURIComponent(id)}`,
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
