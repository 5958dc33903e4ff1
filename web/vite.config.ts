import { defineConfig } from 'vite';

/** The dashboard: built into dist/web (gitignored), served by callrec itself at `/` (src/api/dashboard.ts). */
export default defineConfig({
  // Preact's JSX runtime through Vite's own transform: no Babel preset needed.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
    // Vite inlines small assets as data: URLs by default; the CSP allows only this origin.
    assetsInlineLimit: 0,
  },
});
