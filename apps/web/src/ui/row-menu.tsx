import { useEffect, useId, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';

export interface MenuItem {
  label: string;
  destructive?: boolean;
  onSelect: () => void;
}

/**
 * A row's "Actions ⋯" button and its menu (WAI-ARIA menu button): destructive operations live
 * here, one click away from the table, instead of as red buttons on every row. Escape or a click
 * elsewhere closes it; arrow keys move between items.
 */
export function RowMenu(props: { label: string; items: MenuItem[] }): ReactNode {
  const [open, setOpen] = useState(false);
  const menuId = useId();
  const root = useRef<HTMLSpanElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (!open) return;
    const outside = (e: MouseEvent) => root.current && !root.current.contains(e.target as Node) && setOpen(false);
    document.addEventListener('mousedown', outside);
    root.current?.querySelector<HTMLButtonElement>('[role="menuitem"]')?.focus();
    return () => document.removeEventListener('mousedown', outside);
  }, [open]);
  if (props.items.length === 0) return null;
  const onKey = (e: KeyboardEvent) => {
    const items = [...(root.current?.querySelectorAll<HTMLButtonElement>('[role="menuitem"]') ?? [])];
    const at = items.indexOf(document.activeElement as HTMLButtonElement);
    if (e.key === 'Escape') {
      setOpen(false);
      button.current?.focus();
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      items[(at + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length]?.focus();
    }
  };
  return (
    <span className="row-menu" ref={root} onKeyDown={onKey}>
      <button ref={button} type="button" className="secondary" aria-haspopup="menu" aria-expanded={open} aria-controls={open ? menuId : undefined} onClick={() => setOpen((o) => !o)}>
        {props.label} <span aria-hidden="true">⋯</span>
      </button>
      {open && (
        <span role="menu" id={menuId} aria-label={props.label} className="menu">
          {props.items.map((item) => (
            <button
              key={item.label}
              type="button"
              role="menuitem"
              className={item.destructive ? 'menuitem destructive' : 'menuitem'}
              onClick={() => {
                setOpen(false);
                // The focus goes back to the menu button first, so a dialog the item opens returns it there.
                button.current?.focus();
                item.onSelect();
              }}
            >
              {item.label}
            </button>
          ))}
        </span>
      )}
    </span>
  );
}
