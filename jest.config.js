// Two projects: fast unit tests (parallel) and lab tests (real hosts; run serially by test/run-tests.js).
const tsJest = ['ts-jest', { isolatedModules: true, tsconfig: 'tsconfig.json' }];
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
module.exports = {
  projects: [
    // test/support/unit-setup.ts: the unit project's test timeout (testTimeout is a global option only).
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/lab/'], setupFilesAfterEnv: ['<rootDir>/test/support/unit-setup.ts'] },
    // globalTeardown takes the lab down after the last lab test file (test/lab/helpers.ts brings it up).
    { ...common, displayName: 'lab', testMatch: ['<rootDir>/test/lab/**/*.test.ts'], globalTeardown: '<rootDir>/test/lab/global-teardown.ts' },
  ],
};
