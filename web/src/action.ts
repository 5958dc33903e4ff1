import { useState } from 'preact/hooks';

/**
 * A user action that calls the API (a form's submit, a button): while it runs `busy` is true, and
 * when it throws, `error` holds what to tell the person (`explain` words it; the API's message by default).
 */
export function useAction<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
  explain: (err: Error) => string = (err) => err.message,
) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (...args: A) => {
    setError(null);
    setBusy(true);
    try {
      await action(...args);
    } catch (err) {
      setError(explain(err as Error));
    } finally {
      setBusy(false);
    }
  };
  /** For `onSubmit`: the page does not navigate, the action runs. */
  const submit = (event: Event) => {
    event.preventDefault();
    void run(...([] as unknown as A));
  };
  return { error, busy, run, submit };
}
