import type { ComponentChildren } from 'preact';

/** What this key may not do here, and why: shown in place of the controls it hides. */
export function Forbidden({ scope, children }: { scope: string; children: ComponentChildren }) {
  return (
    <p class="notice">
      {children} This API key lacks the <code>{scope}</code> scope.
    </p>
  );
}

export function ErrorMessage({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}
