import { useEffect, useState } from 'preact/hooks';
import { useAction } from '../action.js';
import { api, ApiError, can, type CallPage, type CallView, type Me } from '../api.js';
import { ErrorMessage, Forbidden } from '../components/Notice.js';
import { callDurationMs, formatDuration, formatTime } from '../format.js';
import { href } from '../router.js';
import { consentText, RECORDING_STATUSES, recordingStatusText } from '../words.js';

const PAGE_SIZE = 100;
/** Live calls are refreshed this often: polling is enough for a recordings screen. */
const POLL_MS = 3000;

interface Filters {
  agent_id: string;
  status: string;
  from: string;
  to: string;
}

const NO_FILTERS: Filters = { agent_id: '', status: '', from: '', to: '' };

function listPath(filters: Filters, cursor: string | null): string {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (filters.agent_id) query.set('agent_id', filters.agent_id);
  if (filters.status) query.set('status', filters.status);
  // datetime-local inputs are local time without a zone; the API wants an instant.
  if (filters.from) query.set('from', new Date(filters.from).toISOString());
  if (filters.to) query.set('to', new Date(filters.to).toISOString());
  if (cursor) query.set('cursor', cursor);
  return `/api/calls?${query}`;
}

/** The newest page merged into what is shown: new calls on top, known ones updated in place. */
function mergeNewest(shown: CallView[], newest: CallView[]): CallView[] {
  const fresh = new Map(newest.map((call) => [call.id, call]));
  const known = new Set(shown.map((call) => call.id));
  return [...newest.filter((call) => !known.has(call.id)), ...shown.map((call) => fresh.get(call.id) ?? call)];
}

function CallRow({ call }: { call: CallView }) {
  const live = call.status === 'live';
  return (
    <tr class={live ? 'live' : undefined} onClick={() => (location.hash = href.call(call.id))}>
      <td>{formatTime(call.started_at)}</td>
      <td>
        <a href={href.call(call.id)}>{call.id}</a>
      </td>
      <td>{call.agent_id}</td>
      <td>{call.provider}</td>
      <td>{formatDuration(callDurationMs(call))}</td>
      <td>
        {live && <span class="badge live">Live</span>}{' '}
        <span class={`badge status-${call.recording_status}`}>{recordingStatusText(call.recording_status)}</span>
      </td>
      <td>{consentText(call.consent)}</td>
      <td>{call.recording?.channels === 2 ? 'dual' : call.recording ? 'mono' : '—'}</td>
    </tr>
  );
}

function CallSearch() {
  const [callId, setCallId] = useState('');
  const { error, submit } = useAction(
    async () => {
      const call = await api<CallView>('GET', `/api/calls/${encodeURIComponent(callId.trim())}`);
      location.hash = href.call(call.id);
    },
    (err) => (err instanceof ApiError && err.status === 404 ? `No call with id ${callId.trim()}.` : err.message),
  );
  return (
    // biome-ignore lint/a11y/useSemanticElements: the form submits the search; `<search><form>` would only add a wrapper for the same role.
    <form class="search" role="search" onSubmit={submit}>
      <label for="search-call-id">Call id</label>
      <input id="search-call-id" required value={callId} onInput={(e) => setCallId(e.currentTarget.value)} />
      <button type="submit">Find call</button>
      <ErrorMessage error={error} />
    </form>
  );
}

function FilterBar({ filters, onChange }: { filters: Filters; onChange: (filters: Filters) => void }) {
  const field = (name: keyof Filters) => ({
    id: `filter-${name}`,
    value: filters[name],
    onChange: (e: Event) => onChange({ ...filters, [name]: (e.currentTarget as HTMLInputElement).value }),
  });
  return (
    <form class="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
      <div>
        <label for="filter-agent_id">Agent</label>
        <input {...field('agent_id')} placeholder="any" />
      </div>
      <div>
        <label for="filter-status">Status</label>
        <select {...field('status')}>
          <option value="">any</option>
          {RECORDING_STATUSES.map((status) => (
            <option value={status}>{recordingStatusText(status)}</option>
          ))}
        </select>
      </div>
      <div>
        <label for="filter-from">From</label>
        <input type="datetime-local" {...field('from')} />
      </div>
      <div>
        <label for="filter-to">To</label>
        <input type="datetime-local" {...field('to')} />
      </div>
      <button type="button" onClick={() => onChange(NO_FILTERS)}>
        Clear filters
      </button>
    </form>
  );
}

/** Call Logs: newest first, cursor-paged, filtered, live calls refreshed without a reload. */
export function CallLogs({ me }: { me: Me }) {
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [calls, setCalls] = useState<CallView[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const allowed = can(me, 'recordings:read');

  useEffect(() => {
    if (!allowed) return;
    let stopped = false;
    setLoading(true);
    setError(null);
    api<CallPage>('GET', listPath(filters, null))
      .then(
        (page) => {
          if (stopped) return;
          setCalls(page.data);
          setCursor(page.next_cursor);
        },
        (err: Error) => !stopped && setError(err.message),
      )
      .finally(() => !stopped && setLoading(false));
    const timer = setInterval(() => {
      if (document.hidden) return;
      api<CallPage>('GET', listPath(filters, null)).then(
        (page) => !stopped && setCalls((shown) => mergeNewest(shown, page.data)),
        () => {},
      );
    }, POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [filters, allowed]);

  const loadMore = async () => {
    setLoading(true);
    try {
      const page = await api<CallPage>('GET', listPath(filters, cursor));
      setCalls((shown) => [...shown, ...page.data]);
      setCursor(page.next_cursor);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setLoading(false);
    }
  };

  return (
    <section>
      <h1>Call Logs</h1>
      {!allowed ? (
        <Forbidden scope="recordings:read">Calls and their recordings are not shown.</Forbidden>
      ) : (
        <>
          <CallSearch />
          <FilterBar filters={filters} onChange={setFilters} />
          <ErrorMessage error={error} />
          {/* biome-ignore lint/a11y/useSemanticElements lint/a11y/noNoninteractiveTabindex: a scrolling region must take focus to scroll by keyboard (axe scrollable-region-focusable). */}
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Calls">
            <table class="calls">
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">Call id</th>
                  <th scope="col">Agent</th>
                  <th scope="col">Provider</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Recording</th>
                  <th scope="col">Consent</th>
                  <th scope="col">Channels</th>
                </tr>
              </thead>
              <tbody>
                {calls.map((call) => (
                  <CallRow key={call.id} call={call} />
                ))}
              </tbody>
            </table>
          </div>
          <p class="count" aria-live="polite">
            {loading
              ? 'Loading…'
              : calls.length === 0
                ? 'No calls match.'
                : `${calls.length} call${calls.length === 1 ? '' : 's'} shown`}
          </p>
          {cursor && !loading && (
            <button type="button" onClick={loadMore}>
              Load more
            </button>
          )}
        </>
      )}
    </section>
  );
}
