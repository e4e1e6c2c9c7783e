import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { del, get, messageOf } from '../api/client.ts';
import { useCan } from '../api/session.ts';
import type { ApiToken, User } from '../api/types.ts';
import { ConfirmButton, ErrorNote, when } from '../ui/confirm.tsx';

/**
 * One user's API tokens (`#/users/{id}/tokens`): what automation acts as them, when each was last
 * used and when it expires; admins revoke one (a leaked CI secret, someone who left). Never a secret.
 */
export function UserTokensPage(props: { userId: string }): ReactNode {
  const { userId } = props;
  const [user, setUser] = useState<User | null>(null);
  const [tokens, setTokens] = useState<ApiToken[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const canRevoke = useCan('users:write');
  const load = useCallback(() => {
    get<User>(`/api/v1/users/${userId}`).then(setUser, (e) => setError(messageOf(e)));
    get<{ items: ApiToken[] }>(`/api/v1/users/${userId}/tokens`).then(
      (r) => setTokens(r.items),
      (e) => setError(messageOf(e)),
    );
  }, [userId]);
  useEffect(load, [load]);
  const who = user?.username ?? 'this user';

  return (
    <section aria-labelledby="tokens-title">
      <p>
        <a href="#/users">← Users</a>
      </p>
      <h1 id="tokens-title">API tokens of {who}</h1>
      <p className="muted">Tokens end with a password reset, &ldquo;Sign out everywhere&rdquo; and disabling the account; each expires on its date.</p>
      <ErrorNote error={error} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <table aria-label={`API tokens of ${who}`}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Starts with</th>
            <th scope="col">Created</th>
            <th scope="col">Last used</th>
            <th scope="col">Expires</th>
            {canRevoke && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {tokens?.map((t) => (
            <tr key={t.id}>
              <th scope="row">{t.name}</th>
              <td>
                <code>{t.prefix}…</code>
              </td>
              <td>{when(t.createdAt)}</td>
              <td>{when(t.lastUsedAt)}</td>
              <td>{when(t.expiresAt)}</td>
              {canRevoke && (
                <td className="actions">
                  <ConfirmButton
                    label={`Revoke ${t.name}`}
                    question={`Revoke the token ${t.name} of ${who}? Whatever uses it stops working at once.`}
                    confirmLabel="Revoke"
                    danger
                    onConfirm={() => del(`/api/v1/users/${userId}/tokens/${t.id}`)}
                    onDone={() => {
                      setNotice(`Token ${t.name} revoked.`);
                      load();
                    }}
                  />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {tokens?.length === 0 && <p className="muted">No API tokens.</p>}
    </section>
  );
}
