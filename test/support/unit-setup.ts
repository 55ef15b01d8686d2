// The unit project's test timeout (jest.config.js, setupFilesAfterEnv). Jest's 5 s default is too
// short for real openssl, sshd and curl work while several workers share two cores; a file that
// needs more still says so with its own jest.setTimeout (which runs after this).
jest.setTimeout(30_000);
