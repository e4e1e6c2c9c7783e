import { useState, type FormEvent, type ReactNode } from 'react';
import { messageOf, post } from '../api/client.ts';
import type { LoginAnswer } from '../api/types.ts';

type Mfa = Extract<LoginAnswer, { mfaRequired: unknown }>['mfaRequired'];

/** Sign-in: the password, then the second factor when the broker asks for one (docs/sign-in.md). */
export function LoginPage(props: { onSignedIn: () => void }): ReactNode {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [mfa, setMfa] = useState<Mfa | null>(null);
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const handle = (answer: LoginAnswer & { recoveryCodes?: string[] }) => {
    if ('mfaRequired' in answer) {
      setMfa(answer.mfaRequired);
      setCode('');
    } else if (answer.recoveryCodes?.length) setRecovery(answer.recoveryCodes);
    else props.onSignedIn();
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mfa) handle(await post<LoginAnswer>('/api/v1/auth/login/mfa', { loginToken: mfa.loginToken, code: code.trim() }));
      else handle(await post<LoginAnswer>('/api/v1/auth/login', { username, password }));
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  if (recovery)
    return (
      <main className="login">
        <h1>Recovery codes</h1>
        <p>Keep these somewhere safe: each signs you in once if you lose your authenticator. They are shown only now.</p>
        <ul className="codes">
          {recovery.map((c) => (
            <li key={c}>
              <code>{c}</code>
            </li>
          ))}
        </ul>
        <button type="button" onClick={props.onSignedIn}>
          Continue
        </button>
      </main>
    );

  return (
    <main className="login">
      <h1>Stagedoor</h1>
      <form onSubmit={submit} aria-label={mfa ? 'Second factor' : 'Sign in'}>
        {!mfa ? (
          <>
            <label htmlFor="login-username">Username</label>
            <input id="login-username" autoComplete="username" autoFocus value={username} onChange={(e) => setUsername(e.target.value)} required />
            <label htmlFor="login-password">Password</label>
            <input id="login-password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
          </>
        ) : (
          <>
            <p>{mfa.prompt ?? (mfa.factor === 'radius' ? 'Answer the prompt of your second factor.' : 'Enter the 6-digit code from your authenticator app (or a recovery code).')}</p>
            {mfa.factor === 'totp-enroll' && mfa.enrollment && <Enrollment enrollment={mfa.enrollment} />}
            <label htmlFor="login-code">One-time code</label>
            <input id="login-code" inputMode="numeric" autoComplete="one-time-code" autoFocus value={code} onChange={(e) => setCode(e.target.value)} required />
          </>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {mfa ? 'Verify' : 'Sign in'}
        </button>
        {mfa && (
          <button type="button" className="secondary" onClick={() => setMfa(null)}>
            Start over
          </button>
        )}
      </form>
    </main>
  );
}

function Enrollment(props: { enrollment: NonNullable<Mfa['enrollment']> }): ReactNode {
  const e = props.enrollment;
  return (
    <div className="enroll">
      <p>Your account needs an authenticator app. Scan this code with it, then enter the first code it shows.</p>
      <img src={e.qrCode} alt="QR code to add Stagedoor to your authenticator app" width={200} height={200} />
      <details>
        <summary>Cannot scan? Type the key by hand</summary>
        <code className="key">{e.secret}</code>
      </details>
    </div>
  );
}
