// Two projects: fast unit tests (parallel) and lab tests (real hosts; run serially by test/run-tests.js).
const tsJest = ['ts-jest', { isolatedModules: true, tsconfig: 'tsconfig.json' }];
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/lab/'] },
    // globalTeardown takes the lab down after the last lab test file (test/lab/helpers.ts brings it up).
    { ...common, displayName: 'lab', testMatch: ['<rootDir>/test/lab/**/*.test.ts'], globalTeardown: '<rootDir>/test/lab/global-teardown.ts' },
  ],
};
