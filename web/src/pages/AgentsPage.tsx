import { useEffect, useState } from 'preact/hooks';
import { api, can, type AgentView, type Me } from '../api.js';
import { ErrorMessage, Forbidden } from '../components/Notice.js';
import { formatTime } from '../format.js';
import { href } from '../router.js';

/** The tenant's agents, and a way to add one by id (it exists once its settings are saved). */
export function AgentsPage({ me }: { me: Me }) {
  const [agents, setAgents] = useState<AgentView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [newId, setNewId] = useState('');
  const allowed = can(me, 'agents:write') || can(me, 'recordings:read');

  useEffect(() => {
    if (allowed)
      api<{ data: AgentView[] }>('GET', '/api/agents').then(
        (page) => setAgents(page.data),
        (err: Error) => setError(err.message),
      );
  }, [allowed]);

  return (
    <section>
      <h1>Agents</h1>
      {!allowed && <Forbidden scope="agents:write">Agents are not shown.</Forbidden>}
      <ErrorMessage error={error} />
      {can(me, 'agents:write') && (
        <form
          class="add-agent"
          onSubmit={(e) => {
            e.preventDefault();
            location.hash = href.agent(newId.trim());
          }}
        >
          <label for="new-agent-id">Agent id</label>
          <input
            id="new-agent-id"
            required
            pattern="[A-Za-z0-9._\-]{1,128}"
            title="Letters, digits, dot, underscore and dash, up to 128"
            value={newId}
            onInput={(e) => setNewId(e.currentTarget.value)}
          />
          <button type="submit">Add agent</button>
        </form>
      )}
      {agents &&
        (agents.length === 0 ? (
          <p>No agents yet.</p>
        ) : (
          <ul class="agents">
            {agents.map((agent) => (
              <li>
                <a href={href.agent(agent.id)}>{agent.id}</a>{' '}
                <span class="muted">
                  recording {agent.voice_tools.call_recording.enabled ? 'on' : 'off'} · updated{' '}
                  {formatTime(agent.updated_at)}
                </span>
              </li>
            ))}
          </ul>
        ))}
    </section>
  );
}
