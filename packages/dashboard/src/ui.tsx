/**
 * Shared pieces of every view: links, loading / empty / error states, buttons that show progress
 * while their action runs and the envelope's error as it came, and a hook that loads data.
 */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import type { TroupeError } from './api';
import { onLink } from './router';

export function Link(props: { href: string; children: ComponentChildren; class?: string; 'data-testid'?: string }) {
  return <a href={props.href} onClick={onLink} class={props.class} data-testid={props['data-testid']}>{props.children}</a>;
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return <p class="muted loading" role="status" aria-live="polite"><span class="spinner" aria-hidden="true" /> {what}…</p>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty" data-testid="empty">{children}</div>;
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as TroupeError;
  return (
    <div class="error" role="alert" data-testid="error">
      {e.status ? <strong>{e.status}: </strong> : null}{e.message ?? String(error)}
      {Array.isArray(e.details) && e.details.length ? <pre>{JSON.stringify(e.details, null, 2)}</pre> : null}
    </div>
  );
}

export interface Loaded<T> { data: T | undefined; error: unknown; loading: boolean; reload(): Promise<void>; set(v: T): void }

/** Runs `load` now and whenever `deps` change; `reload` runs it again (keeping what is shown meanwhile). */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const reload = useCallback(async () => {
    setLoading(true);
    try {
      setData(await load());
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }, deps);
  useEffect(() => {
    setData(undefined);
    void reload();
  }, [reload]);
  return { data, error, loading, reload, set: setData };
}

/** A button that runs an async action: disabled with a spinner while it runs, the error below it after. */
export function Action(props: {
  run: () => Promise<unknown>; children: ComponentChildren; kind?: 'primary' | 'danger' | 'plain'; disabled?: boolean;
  'data-testid'?: string; title?: string; busyText?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const click = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.run();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={props.kind ?? 'plain'} onClick={click} disabled={busy || props.disabled} aria-busy={busy}
        data-testid={props['data-testid']} title={props.title}>
        {busy ? <><span class="spinner" aria-hidden="true" /> {props.busyText ?? props.children}</> : props.children}
      </button>
      {error ? <ErrorBox error={error} /> : null}
    </span>
  );
}

/** A form whose submit shows progress and the server's error. */
export function Form(props: { onSubmit: () => Promise<unknown>; children: ComponentChildren; submit: string; 'data-testid'?: string; class?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.onSubmit();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} data-testid={props['data-testid']} class={props.class ?? 'form'}>
      {props.children}
      <div class="form-actions">
        <button type="submit" class="primary" disabled={busy} aria-busy={busy}>{busy ? <><span class="spinner" aria-hidden="true" /> {props.submit}…</> : props.submit}</button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

export function Field(props: { label: string; children: ComponentChildren; hint?: string }) {
  return (
    <label class="field">
      <span class="label">{props.label}</span>
      {props.children}
      {props.hint ? <span class="hint">{props.hint}</span> : null}
    </label>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status}`} data-testid="status">{status}</span>;
}

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');
export const short = (id: string | null | undefined) => (id ? id.slice(0, 8) : '—');
