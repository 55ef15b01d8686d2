import * as fs from 'fs';
import * as path from 'path';

/** `<state-dir>/clusters/<name>/`: everything tiseal keeps locally about one cluster. */
export class ClusterDir {
  readonly root: string;
  constructor(stateDir: string, readonly name: string) {
    this.root = path.join(stateDir, 'clusters', name);
  }
  ensure(): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
  }
  get tlsDir(): string {
    return path.join(this.root, 'tls');
  }
  get lockFile(): string {
    return path.join(this.root, 'lock');
  }
  get journalFile(): string {
    return path.join(this.root, 'journal.jsonl');
  }
  get metaFile(): string {
    return path.join(this.root, 'meta.json');
  }
  get scalePdFile(): string {
    return path.join(this.root, 'scale-pd.yaml');
  }
}
