import { useCallback, useEffect, useId, useState, type ReactNode } from 'react';
import { del, get, messageOf, put } from '../api/client.ts';
import { useCan } from '../api/session.ts';
import type { Group, User } from '../api/types.ts';
import { ConfirmButton, ErrorNote } from '../ui/confirm.tsx';

/**
 * One group (`#/groups/{id}`): its members, and for admins adding and removing them here instead of
 * editing each user. Policies name groups, so this is where "who sees what" is changed.
 */
export function GroupPage(props: { groupId: string }): ReactNode {
  const { groupId } = props;
  const [group, setGroup] = useState<Group | null>(null);
  const [members, setMembers] = useState<User[] | null>(null);
  const [everyone, setEveryone] = useState<User[]>([]);
  const [chosen, setChosen] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const canWrite = useCan('groups:write');
  const selectId = useId();
  const load = useCallback(() => {
    get<Group>(`/api/v1/groups/${groupId}`).then(setGroup, (e) => setError(messageOf(e)));
    get<{ items: User[] }>(`/api/v1/users?groupId=${groupId}&limit=500`).then(
      (r) => setMembers(r.items),
      (e) => setError(messageOf(e)),
    );
  }, [groupId]);
  useEffect(load, [load]);
  useEffect(() => {
    if (canWrite) get<{ items: User[] }>('/api/v1/users?limit=500').then((r) => setEveryone(r.items), () => setEveryone([]));
  }, [canWrite]);
  const name = group?.name ?? 'this group';
  const candidates = everyone.filter((u) => !members?.some((m) => m.id === u.id));

  const add = async () => {
    const user = everyone.find((u) => u.id === chosen);
    if (!user) return;
    setError(null);
    setNotice(null);
    try {
      await put(`/api/v1/groups/${groupId}/members/${user.id}`, undefined);
      setNotice(`${user.username} added to ${name}.`);
      setChosen('');
      load();
    } catch (e) {
      setError(`Add ${user.username}: ${messageOf(e)}`);
    }
  };

  return (
    <section aria-labelledby="group-title">
      <p>
        <a href="#/groups">← Groups</a>
      </p>
      <h1 id="group-title">Members of {name}</h1>
      {group && group.source !== 'local' && <p className="muted">This group comes from the directory ({group.source}): sign-in sets its members again.</p>}
      <ErrorNote error={error} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {canWrite && (
        <form
          className="filters"
          aria-label={`Add a member to ${name}`}
          onSubmit={(e) => {
            e.preventDefault();
            void add();
          }}
        >
          <label htmlFor={selectId}>User to add</label>
          <select id={selectId} value={chosen} onChange={(e) => setChosen(e.target.value)}>
            <option value="">choose a user…</option>
            {candidates.map((u) => (
              <option key={u.id} value={u.id}>
                {u.displayName ? `${u.username} (${u.displayName})` : u.username}
              </option>
            ))}
          </select>
          <button type="submit" disabled={!chosen}>
            Add to {name}
          </button>
        </form>
      )}
      <table aria-label={`Members of ${name}`}>
        <thead>
          <tr>
            <th scope="col">Username</th>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            {canWrite && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {members?.map((u) => (
            <tr key={u.id}>
              <th scope="row">{u.username}</th>
              <td>{u.displayName ?? '—'}</td>
              <td>{u.role}</td>
              {canWrite && (
                <td className="actions">
                  <ConfirmButton
                    label={`Remove ${u.username}`}
                    question={`Remove ${u.username} from ${name}? What this group gave them ends now.`}
                    confirmLabel="Remove"
                    onConfirm={() => del(`/api/v1/groups/${groupId}/members/${u.id}`)}
                    onDone={() => {
                      setNotice(`${u.username} removed from ${name}.`);
                      load();
                    }}
                  />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {members?.length === 0 && <p className="muted">No members.</p>}
    </section>
  );
}
