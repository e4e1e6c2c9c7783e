import { useEffect, useId, useState, type FormEvent, type ReactNode } from 'react';
import { ApiError, get, messageOf, post } from '../api/client.ts';
import type { User } from '../api/types.ts';
import { ErrorNote } from '../ui/confirm.tsx';

/**
 * An admin sets a user's password (`#/users/{id}/password`): for someone locked out or a new
 * starter. The broker stores it hashed (argon2id), audits it, and ends the user's sessions and API
 * tokens, so a password someone else knew stops working everywhere (docs/decisions/0021).
 */
export function UserPasswordPage(props: { userId: string }): ReactNode {
  const { userId } = props;
  const [user, setUser] = useState<User | null>(null);
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const ids = { password: useId(), again: useId(), error: useId() };
  useEffect(() => {
    get<User>(`/api/v1/users/${userId}`).then(setUser, (e) => setError(messageOf(e)));
  }, [userId]);
  const who = user?.username ?? 'this user';

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setNotice(null);
    if (password !== again) return setFieldError('the two passwords differ');
    setFieldError(null);
    setBusy(true);
    try {
      await post(`/api/v1/users/${userId}/password`, { password });
      setPassword('');
      setAgain('');
      setNotice(`Password of ${who} set. Their sessions and API tokens have ended; tell them the new password another way than e-mail.`);
    } catch (err) {
      const field = err instanceof ApiError ? err.fields.find((f) => f.path === 'password') : undefined;
      if (field) setFieldError(field.message);
      else setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="password-title">
      <p>
        <a href="#/users">← Users</a>
      </p>
      <h1 id="password-title">Set the password of {who}</h1>
      <p className="muted">{user?.authServerId ? `${who} signs in through a directory: this password is used only if the local server is asked.` : 'The user signs in with it at once; every session and API token they had ends.'}</p>
      <ErrorNote error={error} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <form className="resource-form" aria-label={`Set the password of ${who}`} onSubmit={submit}>
        <div className="fields">
          <p className="field">
            <label htmlFor={ids.password}>New password</label>
            <input
              id={ids.password}
              type="password"
              autoComplete="new-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              aria-invalid={fieldError ? true : undefined}
              aria-describedby={fieldError ? ids.error : undefined}
              required
            />
          </p>
          <p className="field">
            <label htmlFor={ids.again}>Repeat the new password</label>
            <input id={ids.again} type="password" autoComplete="new-password" value={again} onChange={(e) => setAgain(e.target.value)} required />
          </p>
        </div>
        {fieldError && (
          <p id={ids.error} className="field-error" role="alert">
            {fieldError}
          </p>
        )}
        <p className="actions">
          <button type="submit" disabled={busy}>
            Set password
          </button>
        </p>
      </form>
    </section>
  );
}
