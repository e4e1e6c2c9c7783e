import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { del, get, messageOf, post, postOnce } from '../api/client.ts';
import type { LiveState } from '../api/events.ts';
// The plain module, not the package index: the portal bundle carries no zod schemas.
import { describeGrant } from '@stagedoor/contract/grant-words';
import type { Connection, Desktop, Desktops } from '../api/types.ts';
import { ConfirmButton, ErrorNote } from '../ui/confirm.tsx';

const STATE_LABEL: Record<Desktop['state'], string> = {
  available: 'Available',
  starting: 'Starting',
  running: 'Running',
  'in-use': 'In use',
  stopped: 'Stopped',
  unavailable: 'Unavailable',
};

/** "My desktops": what the policy offers, connect, progress while starting, the file or command, release, restart. */
export function PortalPage(props: { live: LiveState }): ReactNode {
  const [desktops, setDesktops] = useState<Desktops | null>(null);
  const [mine, setMine] = useState<Connection[]>([]);
  const [error, setError] = useState<string | null>(null);
  const upsert = (c: Connection) => setMine((old) => [...old.filter((o) => o.id !== c.id), c]);
  const remove = (id: string) => setMine((old) => old.filter((o) => o.id !== id));
  const refresh = useCallback(() => {
    get<Desktops>('/api/v1/desktops').then(setDesktops, (err) => setError(messageOf(err)));
  }, []);
  useEffect(refresh, [refresh]);
  // The event stream carries every live connection of mine with its progress; it replaces what we
  // had, except that it leaves out the instructions of a settled connection (asking for them may
  // issue a new gateway grant, which only the user's own request should do): those are kept.
  useEffect(() => {
    const live = props.live.connections;
    if (!live) return;
    setMine((old) => live.map((c) => (c.instructions || c.state === 'starting' ? c : { ...c, instructions: old.find((o) => o.id === c.id)?.instructions ?? null })));
  }, [props.live.connections]);
  // A settled connection we have no instructions for (the page was opened after it became ready).
  const missing = mine
    .filter((c) => (c.state === 'ready' || c.state === 'connected') && !c.instructions)
    .map((c) => c.id)
    .join(',');
  useEffect(() => {
    for (const id of missing ? missing.split(',') : []) get<Connection>(`/api/v1/connections/${id}`).then(upsert, () => undefined);
  }, [missing]);
  const connectionsStarted = props.live.connections?.map((c) => `${c.id}:${c.state}`).join(',');
  useEffect(refresh, [connectionsStarted, refresh]);

  // Without the event stream (a proxy that buffers it, say), a starting desktop is polled instead.
  useEffect(() => {
    const starting = mine.filter((c) => c.state === 'starting');
    if (props.live.live || starting.length === 0) return;
    const timer = setTimeout(() => {
      for (const c of starting) get<Connection>(`/api/v1/connections/${c.id}`).then(upsert, () => undefined);
    }, 3000);
    return () => clearTimeout(timer);
  }, [mine, props.live.live]);

  return (
    <section aria-labelledby="portal-title" className="portal">
      <h1 id="portal-title">My desktops</h1>
      <ErrorNote error={error} />
      {desktops && !desktops.policy && <p className="notice">{desktops.reason}</p>}
      <ul className="desktops">
        {desktops?.desktops.map((d) => (
          <DesktopCard
            key={d.poolId}
            desktop={d}
            connections={mine.filter((c) => c.poolId === d.poolId && ['starting', 'ready', 'connected'].includes(c.state))}
            allowRestart={Boolean(desktops.policy?.allowRestart)}
            onConnection={upsert}
            onReleased={(id) => {
              remove(id);
              refresh();
            }}
          />
        ))}
      </ul>
    </section>
  );
}

function DesktopCard(props: { desktop: Desktop; connections: Connection[]; allowRestart: boolean; onConnection: (c: Connection) => void; onReleased: (id: string) => void }): ReactNode {
  const d = props.desktop;
  const [protocol, setProtocol] = useState(d.protocols[0] ?? 'rdp');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const connect = async () => {
    setBusy(true);
    setError(null);
    try {
      props.onConnection(await postOnce<Connection>('/api/v1/connections', { poolId: d.poolId, protocol }));
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  const titleId = `desktop-${d.poolId}`;
  return (
    <li className="desktop" aria-labelledby={titleId}>
      <h2 id={titleId}>{d.name}</h2>
      {d.description && <p className="muted">{d.description}</p>}
      <p>
        <span className={`badge state-${d.state}`}>{STATE_LABEL[d.state]}</span>
        {d.reason && <span className="muted"> {d.reason}</span>}
      </p>
      {props.connections.map((c) => (
        <ConnectionPanel key={c.id} connection={c} desktopName={d.name} allowRestart={props.allowRestart} onReleased={() => props.onReleased(c.id)} />
      ))}
      {props.connections.length === 0 && d.state !== 'unavailable' && (
        <div className="connect">
          {d.protocols.length > 1 && (
            <>
              <label htmlFor={`${titleId}-protocol`}>Protocol</label>
              <select id={`${titleId}-protocol`} value={protocol} onChange={(e) => setProtocol(e.target.value as typeof protocol)}>
                {d.protocols.map((p) => (
                  <option key={p} value={p}>
                    {p.toUpperCase()}
                  </option>
                ))}
              </select>
            </>
          )}
          <button type="button" disabled={busy} onClick={connect} aria-label={`Connect to ${d.name}`}>
            Connect
          </button>
        </div>
      )}
      <ErrorNote error={error} />
    </li>
  );
}

function ConnectionPanel(props: { connection: Connection; desktopName: string; allowRestart: boolean; onReleased: () => void }): ReactNode {
  const c = props.connection;
  const i = c.instructions;
  const [copied, setCopied] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  return (
    <div className="connection" aria-live="polite">
      <p className="machine">
        {c.workstation.name} · {c.protocol.toUpperCase()}
      </p>
      {c.state === 'starting' && (
        <div className="progress">
          <progress max={100} value={c.progress.percent} aria-label={`Starting ${props.desktopName}`} />
          <span className="stage">{c.progress.message}</span>
        </div>
      )}
      {i && (
        <div className="instructions">
          {i.file ? (
            <>
              <a className="button" href={`/api/v1/connections/${c.id}/file`} download={i.fileName ?? undefined}>
                Download {i.fileName?.split('.').pop()?.toUpperCase() ?? 'connection'} file
              </a>
              {/* TigerVNC and TurboVNC refuse RealVNC's .vnc format: offer theirs beside it (docs/connect-flow.md). */}
              {i.protocol === 'vnc' && (
                <>
                  {' '}
                  <a className="button secondary" href={`/api/v1/connections/${c.id}/file?format=tigervnc`} download={(i.fileName ?? 'connection.vnc').replace(/\.vnc$/, '.tigervnc')}>
                    Download TigerVNC file
                  </a>
                </>
              )}
            </>
          ) : (
            i.command && (
              <>
                <code className="command">{i.command}</code>
                <button
                  type="button"
                  onClick={async () => {
                    // The clipboard needs a secure context (HTTPS or localhost); otherwise say so.
                    const done = await (navigator.clipboard?.writeText(i.command!).then(() => true, () => false) ?? Promise.resolve(false));
                    setCopied(done ? 'Copied' : 'Select the command above and copy it');
                  }}
                >
                  {`Copy ${i.protocol === 'ssh' ? 'ssh command' : 'address'}`}
                </button>
                {copied && (
                  <span role="status" className="muted">
                    {' '}
                    {copied}
                  </span>
                )}
              </>
            )
          )}
          {i.browser && (
            // A tab of its own; the connection id rides in the fragment and the token never in a URL (ADR 0028).
            <p>
              <a className="button" href={`/session.html#${c.id}`} target="_blank" rel="noopener" aria-label={`Open ${c.workstation.name} in browser`}>
                Open in browser
              </a>
            </p>
          )}
          <p className="muted">
            {i.viaGateway ? `Through the gateway ${i.host}:${i.port}` : `Direct to ${i.host}:${i.port}`}
            {i.connectBy && ` · connect by ${new Date(i.connectBy).toLocaleTimeString()}`}
          </p>
          {c.grant && (
            <p className="muted grant-state" data-grant-state={c.grant.state}>
              {describeGrant(c.grant, (t) => new Date(t).toLocaleTimeString())}
            </p>
          )}
        </div>
      )}
      {status && (
        <p role="status" className="notice">
          {status}
        </p>
      )}
      <div className="actions">
        <ConfirmButton label="Release" question={`Release ${c.workstation.name}?`} confirmLabel="Release" onConfirm={() => del(`/api/v1/connections/${c.id}`)} onDone={props.onReleased} />
        {props.allowRestart && c.state !== 'starting' && (
          <ConfirmButton label="Restart my machine" question={`Restart ${c.workstation.name}? Unsaved work is lost.`} confirmLabel="Restart" danger onConfirm={() => post(`/api/v1/connections/${c.id}/restart`)} onDone={() => setStatus('Restarting: connect again in a minute.')} />
        )}
      </div>
    </div>
  );
}
