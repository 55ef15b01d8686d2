#!/usr/bin/env node
'use strict';
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` via the prepare script).
const path = require('path');
const fs = require('fs');
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli.js');
if (!fs.existsSync(cli)) {
  process.stderr.write('tiseal: not built yet (missing dist/src/cli.js). Suggestion: run `npm install` or `npm run build` in ' + path.join(__dirname, '..') + '\n');
  process.exit(1);
}
require(cli).main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
