// Vite serves and builds the demo (web/) and bundles the training worker from src/browser/.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Cross-origin isolation (COOP + COEP): without it a page gets no SharedArrayBuffer, so the trainer
 * could not share its WebAssembly memory with helper threads and would run on one thread. A host
 * that serves the built demo should send the same two headers.
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  server: { host: '127.0.0.1', strictPort: false, headers: ISOLATION_HEADERS },
  preview: { host: '127.0.0.1', headers: ISOLATION_HEADERS },
  worker: { format: 'es' },
  // Imported only by the training worker, which Vite's start-up scan does not crawl: found later,
  // it would be optimized on the fly and the page reloaded under a running test.
  optimizeDeps: { include: ['@assemblyscript/loader'] },
  build: { outDir: 'dist', target: 'es2022' },
});
