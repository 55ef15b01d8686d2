/** One file the lab lays out on a host (own module: lab/monitoring.ts and lab/deploy.ts both use it). */
export interface DeployFile {
  path: string;
  content: string;
  mode: number;
  /** `root` for unit files, else the deploy user */
  owner: 'root' | 'user';
}
