import * as path from 'path';
import { ensureStateDirs } from './private-dir';

/** `<state-dir>/clusters/<name>/`: everything tiseal keeps locally about one cluster. */
export class ClusterDir {
  readonly root: string;
  constructor(readonly stateDir: string, readonly name: string) {
    this.root = path.join(stateDir, 'clusters', name);
  }
  ensure(): void {
    ensureStateDirs(this.stateDir, ['clusters', this.name]);
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
