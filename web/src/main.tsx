import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, session, type Me } from './api.js';
import { TestCall } from './components/TestCall.js';
import { AgentPage } from './pages/AgentPage.js';
import { AgentsPage } from './pages/AgentsPage.js';
import { CallLogs } from './pages/CallLogs.js';
import { CallPage } from './pages/CallPage.js';
import { SignIn } from './pages/SignIn.js';
import { href, useRoute, type Route } from './router.js';
import './styles.css';

function Page({ route, me }: { route: Route; me: Me }) {
  switch (route.page) {
    case 'calls':
      return <CallLogs me={me} />;
    case 'call':
      return <CallPage me={me} callId={route.callId} />;
    case 'agents':
      return <AgentsPage me={me} />;
    case 'agent':
      return <AgentPage me={me} agentId={route.agentId} />;
  }
}

function App() {
  const route = useRoute();
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(() => session.key() !== null);

  // A reload keeps the session's key: check it is still good before showing anything.
  useEffect(() => {
    if (!checking) return;
    api<Me>('GET', '/api/me')
      .then(setMe, (err: unknown) => {
        if (err instanceof ApiError && err.status === 401) session.signOut();
      })
      .finally(() => setChecking(false));
  }, []);

  if (checking) return <p class="loading">Loading…</p>;
  if (!me) return <SignIn onSignedIn={setMe} />;
  const signOut = () => {
    session.signOut();
    setMe(null);
  };
  return (
    <>
      <header class="top">
        <a class="brand" href={href.calls()}>
          callrec
        </a>
        <nav aria-label="Main">
          <a href={href.calls()} aria-current={route.page === 'calls' || route.page === 'call' ? 'page' : undefined}>
            Call Logs
          </a>
          <a href={href.agents()} aria-current={route.page === 'agents' || route.page === 'agent' ? 'page' : undefined}>
            Agents
          </a>
          <a href="/docs">API reference</a>
        </nav>
        <div class="who">
          {me.features.test_call && <TestCall me={me} />}
          <span class="tenant" title={`key ${me.key.name}`}>
            {me.tenant_id}
          </span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main>
        <Page route={route} me={me} />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
