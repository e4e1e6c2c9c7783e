import { createRoot } from 'react-dom/client';
import { BrowserSessionPage } from './pages/browser-session.tsx';
import './styles.css';
import './browser/browser-session.css';

// session.html#<connection id>: the id in the fragment (never sent to a server, never in a log); the
// grant's token comes from the broker in a response body (ADR 0028).
const connectionId = window.location.hash.replace(/^#/, '');

// No StrictMode here: its development double mount would open the tunnel twice, and the second
// WebSocket would find the single-use grant in use.
createRoot(document.getElementById('root')!).render(<BrowserSessionPage connectionId={connectionId} />);
