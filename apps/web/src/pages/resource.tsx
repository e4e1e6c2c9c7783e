import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { api, del, get, messageOf, post } from '../api/client.ts';
import { useCan, useSession } from '../api/session.ts';
import { ConfirmButton, ErrorNote } from '../ui/confirm.tsx';
import { ResourceForm, valuesOf, type Values } from '../ui/form.tsx';
import type { Item, ResourceSpec, RowAction } from './resources.ts';

/**
 * One admin resource (pools, policies, plans, providers, auth servers, gateways, users, groups):
 * the list, and create / edit / delete for roles with the write permission. Field errors of the
 * API's 400 answers appear at their field.
 */
export function ResourcePage(props: { spec: ResourceSpec }): ReactNode {
  const { spec } = props;
  const [items, setItems] = useState<Item[] | null>(null);
  const [editing, setEditing] = useState<Item | 'new' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const canWrite = useCan(spec.writePermission);
  const { permissions } = useSession();
  const links = spec.rowLinks?.filter((l) => permissions.includes(l.permission)) ?? [];
  const hasActions = canWrite || links.length > 0;
  const load = useCallback(() => {
    get<{ items: Item[] }>(`${spec.path}${spec.listQuery ?? ''}`).then(
      (r) => {
        setItems(r.items);
        setError(null);
      },
      (e) => setError(messageOf(e)),
    );
  }, [spec]);
  useEffect(load, [load]);

  const runAction = async (action: RowAction, item: Item) => {
    setNotice(null);
    setError(null);
    try {
      setNotice(action.describe((await post<Values>(action.path(item), action.body)) ?? {}));
      load();
    } catch (e) {
      setError(`${action.label} ${nameOf(spec, item)}: ${messageOf(e)}`);
    }
  };

  const move = async (index: number, by: -1 | 1) => {
    if (!items || !spec.reorder) return;
    const ids = items.map((i) => i.id);
    [ids[index], ids[index + by]] = [ids[index + by]!, ids[index]!];
    setNotice(null);
    try {
      await api(spec.reorder.method, spec.reorder.path, { ids });
      setNotice(`${nameOf(spec, items[index]!)} moved ${by < 0 ? 'up' : 'down'}.`);
      load();
    } catch (e) {
      setError(messageOf(e));
    }
  };

  const save = async (body: Values) => {
    const item = editing === 'new' ? null : editing;
    const payload = spec.toBody ? spec.toBody(body, item) : body;
    if (item) {
      await api(spec.update!, `${spec.path}/${item.id}`, payload);
      setNotice(`${spec.singular} ${nameOf(spec, item)} saved.`);
    } else {
      const answer = (await post<Values>(spec.path, payload)) ?? {};
      setNotice(spec.created ? spec.created(answer) : `${spec.singular} created.`);
    }
    setEditing(null);
    load();
  };

  return (
    <section aria-labelledby={`${spec.id}-title`}>
      <h1 id={`${spec.id}-title`}>{spec.title}</h1>
      {spec.intro && <p className="muted">{spec.intro}</p>}
      <ErrorNote error={error} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {canWrite && spec.canCreate && editing === null && (
        <button type="button" onClick={() => (setNotice(null), setEditing('new'))}>
          New {spec.singular.toLowerCase()}
        </button>
      )}
      {canWrite && editing !== null && (
        <ResourceForm
          key={editing === 'new' ? 'new' : editing.id}
          title={editing === 'new' ? `New ${spec.singular.toLowerCase()}` : `Edit ${spec.singular.toLowerCase()} ${nameOf(spec, editing)}`}
          specs={spec.fields}
          mode={editing === 'new' ? 'create' : 'edit'}
          initial={valuesOf(spec.fields, editing === 'new' ? null : spec.toValues ? spec.toValues(editing) : editing)}
          submitLabel={editing === 'new' ? `Create ${spec.singular.toLowerCase()}` : 'Save'}
          onSubmit={save}
          onCancel={() => setEditing(null)}
        />
      )}
      <table aria-label={spec.title}>
        <thead>
          <tr>
            {spec.columns.map((c) => (
              <th key={c.label} scope="col">
                {c.label}
              </th>
            ))}
            {hasActions && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {items?.map((item, index) => (
            <tr key={item.id}>
              {spec.columns.map((c, i) =>
                i === 0 ? (
                  <th key={c.label} scope="row">
                    {c.value(item)}
                  </th>
                ) : (
                  <td key={c.label}>{c.links ? <LinkList links={c.links(item)} /> : c.value(item)}</td>
                ),
              )}
              {hasActions && (
                <td className="actions">
                  {links.map((l) => (
                    <a key={l.label} href={l.href(item)}>
                      {l.label} {nameOf(spec, item)}
                    </a>
                  ))}
                  {canWrite && spec.reorder && index > 0 && (
                    <button type="button" className="secondary" onClick={() => move(index, -1)}>
                      Move up {nameOf(spec, item)}
                    </button>
                  )}
                  {canWrite && spec.reorder && index < items.length - 1 && (
                    <button type="button" className="secondary" onClick={() => move(index, 1)}>
                      Move down {nameOf(spec, item)}
                    </button>
                  )}
                  {canWrite && spec.update && (
                    <button type="button" className="secondary" onClick={() => (setNotice(null), setEditing(item))}>
                      Edit {nameOf(spec, item)}
                    </button>
                  )}
                  {canWrite &&
                    spec.rowActions
                      ?.filter((a) => permissions.includes(a.permission))
                      .map((a) => (
                        <button key={a.label} type="button" className="secondary" onClick={() => runAction(a, item)}>
                          {a.label} {nameOf(spec, item)}
                        </button>
                      ))}
                  {canWrite && spec.canDelete !== false && (
                    <ConfirmButton
                      label={`Delete ${nameOf(spec, item)}`}
                      question={`Delete ${spec.singular.toLowerCase()} ${nameOf(spec, item)}?`}
                      confirmLabel="Delete"
                      danger
                      onConfirm={() => del(`${spec.path}/${item.id}`)}
                      onDone={load}
                    />
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {items?.length === 0 && <p className="muted">None yet.</p>}
    </section>
  );
}

function nameOf(spec: ResourceSpec, item: Item): string {
  return spec.nameOf ? spec.nameOf(item) : String(item.name ?? item.id);
}

function LinkList(props: { links: { text: string; href: string }[] }): ReactNode {
  if (props.links.length === 0) return '—';
  return (
    <ul className="inline-list">
      {props.links.map((l) => (
        <li key={l.href}>
          <a href={l.href}>{l.text}</a>
        </li>
      ))}
    </ul>
  );
}
