import { useState } from 'preact/hooks';
import { useAction } from '../action.js';
import { api, ApiError, session, type Me } from '../api.js';

/** Sign-in with an API key; the key is kept for this browser tab only (sessionStorage). */
export function SignIn({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [key, setKey] = useState('');
  const { error, busy, submit } = useAction(
    async () => {
      const me = await api<Me>('GET', '/api/me', undefined, key.trim());
      session.signIn(key.trim());
      onSignedIn(me);
    },
    (err) =>
      err instanceof ApiError && err.status === 401
        ? 'That API key was not accepted. Check it and try again.'
        : err.message,
  );

  return (
    <main class="sign-in">
      <h1>callrec</h1>
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          aria-describedby={error ? 'sign-in-error' : undefined}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p id="sign-in-error" class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p class="hint">
        Create a key with <code>callrec keys create</code>, or use the operator's <code>CALLREC_API_KEY</code>.
      </p>
    </main>
  );
}
