/**
 * Bench scripts that run as their own process (the SQL probers), transpiled on their own into a
 * temporary dir for the unit tests: they import only mysql2 and each other, so the files sit side by
 * side and mysql2 is resolved from this repo's node_modules. Returns the dir.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';

export function transpileBenchScripts(names: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-bench-scripts-'));
  for (const name of names) {
    const src = fs.readFileSync(path.join(__dirname, '..', '..', 'bench', `${name}.ts`), 'utf8');
    const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
    fs.writeFileSync(path.join(dir, `${name}.js`), js.replace('require("mysql2")', `require(${JSON.stringify(require.resolve('mysql2'))})`));
  }
  return dir;
}
