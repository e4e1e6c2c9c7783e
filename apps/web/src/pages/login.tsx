import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { get, messageOf, post } from '../api/client.ts';
import type { LoginAnswer, SsoServerList } from '../api/types.ts';

type Mfa = Extract<LoginAnswer, { mfaRequired: unknown }>['mfaRequired'];

/**
 * A second factor still due after a single sign-on: the broker sent the browser to `#/sso-mfa?…`
 * (a fragment, which no server log records). Read once, then removed from the address bar.
 */
function ssoMfaFromHash(): Mfa | null {
  const m = /^#\/sso-mfa\?(.*)$/.exec(window.location.hash);
  if (!m) return null;
  const q = new URLSearchParams(m[1]);
  history.replaceState(null, '', `${window.location.pathname}${window.location.search}`);
  const factor = q.get('factor') as Mfa['factor'] | null;
  const loginToken = q.get('loginToken');
  if (!factor || !loginToken) return null;
  return { factor, loginToken, expiresAt: q.get('expiresAt') ?? '', ...(q.get('prompt') ? { prompt: q.get('prompt')! } : {}) } as Mfa;
}

/** Sign-in: a button per single sign-on server, or the password; then the second factor when the broker asks for one (docs/sign-in.md). */
export function LoginPage(props: { onSignedIn: () => void; endSessionUrl?: string | null }): ReactNode {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [mfa, setMfa] = useState<Mfa | null>(ssoMfaFromHash);
  const [sso, setSso] = useState<SsoServerList['items']>([]);
  useEffect(() => {
    get<SsoServerList>('/api/v1/auth/sso')
      .then((l) => setSso(l.items))
      .catch(() => setSso([]));
  }, []);
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
      {props.endSessionUrl && (
        <p role="status">
          You are signed out of Stagedoor. <a href={props.endSessionUrl}>Also sign out at your identity provider</a>
        </p>
      )}
      {!mfa && sso.length > 0 && (
        <nav aria-label="Single sign-on" className="sso">
          {sso.map((s) => (
            // The hash route to come back to travels as returnTo; the broker accepts only paths on this site.
            <a key={s.name} className="button" href={`${s.startUrl}?returnTo=${encodeURIComponent(`/${window.location.hash}`)}`}>
              {s.label}
            </a>
          ))}
        </nav>
      )}
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
