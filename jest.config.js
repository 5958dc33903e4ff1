/** Jest runs our TypeScript as native ESM (mediabunny's MP3 encoder is ESM-only), compiled by swc. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'es6' },
      },
    ],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 60000,
  // On two cores Jest would run every suite in band, in Jest's own process and one heap; late in the
  // run a full GC took several times as long (the transcode suite, which collects to measure
  // memory: 58 s alone, 148 s in the full run). With a limit it runs them in a worker, replaced
  // by a fresh one when its heap has grown past this after a suite: the suite took 64 s, the
  // whole run 550 s instead of 683.
  workerIdleMemoryLimit: '512MB',
};
