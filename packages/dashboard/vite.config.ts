// Vite builds the dashboard into dist/, which the api serves at / (src/http/dashboard.ts).
// `npm run dev -w packages/dashboard` serves it with hot reload and proxies the API to :3000.
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

const api = process.env.TROUPE_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  plugins: [preact()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, target: 'es2022' },
  server: {
    proxy: {
      '/api': api,
      '/openapi.json': api,
      '/admin': api,
      '/socket.io': { target: api, ws: true },
    },
  },
});
