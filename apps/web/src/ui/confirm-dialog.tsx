import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { messageOf } from '../api/client.ts';

/**
 * A modal confirmation (native <dialog>: focus stays inside, Escape cancels) that names what it
 * acts on. For a destructive action the name must be typed before the button works, so a slip
 * on the wrong row cannot destroy a machine.
 */
export function ConfirmDialog(props: {
  title: string;
  body?: string;
  confirmLabel: string;
  /** When set, the action waits until exactly this is typed. */
  typeToConfirm?: string;
  onConfirm: () => Promise<unknown>;
  onClose: (done: boolean) => void;
}): ReactNode {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const inputId = useId();
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    // Keyboard users land back where they were (the row's menu button) when the dialog goes.
    const previous = document.activeElement as HTMLElement | null;
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => previous?.focus();
  }, []);
  const ready = !props.typeToConfirm || typed === props.typeToConfirm;
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
      props.onClose(true);
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} className="confirm-dialog" aria-labelledby={titleId} onCancel={() => props.onClose(false)}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          if (ready && !busy) void go();
        }}
      >
        <h2 id={titleId}>{props.title}</h2>
        {props.body && <p>{props.body}</p>}
        {props.typeToConfirm && (
          <p className="field">
            <label htmlFor={inputId}>
              Type <strong>{props.typeToConfirm}</strong> to confirm
            </label>
            <input id={inputId} autoComplete="off" spellCheck={false} value={typed} onChange={(e) => setTyped(e.target.value)} autoFocus />
          </p>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <p className="actions">
          <button type="submit" className={props.typeToConfirm ? 'danger' : ''} disabled={!ready || busy} autoFocus={!props.typeToConfirm}>
            {props.confirmLabel}
          </button>
          <button type="button" className="secondary" onClick={() => props.onClose(false)}>
            Cancel
          </button>
        </p>
      </form>
    </dialog>
  );
}
