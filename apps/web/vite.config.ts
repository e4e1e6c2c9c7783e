import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The broker serves dist/ at `/`; `npm run dev -w @stagedoor/web` proxies the API to a local broker.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Everything in files: the broker's Content-Security-Policy allows no inline script or style.
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
    // The console, and the browser session tab (session.html: a desktop in a tab of its own, ADR 0028).
    rollupOptions: { input: { index: `${import.meta.dirname}/index.html`, session: `${import.meta.dirname}/session.html` } },
  },
  server: {
    proxy: { '/api': process.env.STAGEDOOR_URL ?? 'http://127.0.0.1:8080' },
  },
});
