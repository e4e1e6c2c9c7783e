import { useState, type ReactNode } from 'react';
import { messageOf } from '../api/client.ts';

/**
 * A button that asks first: the question appears in place (role=alertdialog) with Confirm/Cancel,
 * so keyboard users and screen readers get it without a modal library.
 */
export function ConfirmButton(props: { label: string; question: string; confirmLabel?: string; danger?: boolean; onConfirm: () => Promise<unknown>; onDone?: () => void }): ReactNode {
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!asking)
    return (
      <button type="button" className={props.danger ? 'danger' : 'secondary'} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
      setAsking(false);
      props.onDone?.();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span role="alertdialog" aria-label={props.question} className="confirm">
      <span>{props.question}</span>
      <button type="button" className={props.danger ? 'danger' : ''} disabled={busy} autoFocus onClick={go}>
        {props.confirmLabel ?? 'Confirm'}
      </button>
      <button type="button" className="secondary" onClick={() => setAsking(false)}>
        Cancel
      </button>
      {error && (
        <span className="form-error" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}

export function ErrorNote(props: { error: string | null }): ReactNode {
  return props.error ? (
    <p className="form-error" role="alert">
      {props.error}
    </p>
  ) : null;
}

export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function Pager(props: { total: number; limit: number; offset: number; onOffset: (o: number) => void; label: string }): ReactNode {
  const { total, limit, offset } = props;
  const page = Math.floor(offset / limit) + 1;
  const pages = Math.max(1, Math.ceil(total / limit));
  return (
    <nav className="pager" aria-label={`${props.label} pages`}>
      <button type="button" className="secondary" disabled={offset === 0} onClick={() => props.onOffset(Math.max(0, offset - limit))}>
        Previous page
      </button>
      <span>
        Page {page} of {pages} ({total} in all)
      </span>
      <button type="button" className="secondary" disabled={offset + limit >= total} onClick={() => props.onOffset(offset + limit)}>
        Next page
      </button>
    </nav>
  );
}
