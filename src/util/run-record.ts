/**
 * What a run did that an auditor asks about afterwards (#29 item 6): the certificates it signed
 * and the run id the journal knows it by. Filled in as the run goes (pki signs, the command
 * context is made); written once at the end by state/audit-log.ts. One CLI invocation, one record.
 */
export interface IssuedRecord {
  cn: string;
  serial: string;
  notAfter: string;
  /** SHA-256 fingerprint of the signing CA certificate (openssl's format). */
  ca: string;
}

class RunRecord {
  runId?: string;
  cluster?: string;
  readonly issued: IssuedRecord[] = [];
  /** An action of the plan began (preflight and decisions only read): the run changes something. */
  changing = false;
  noteChange(): void {
    this.changing = true;
  }
  noteIssued(r: IssuedRecord): void {
    this.issued.push(r);
  }
  noteRun(runId: string, cluster: string): void {
    this.runId ??= runId;
    this.cluster ??= cluster;
  }
  reset(): void {
    this.runId = undefined;
    this.cluster = undefined;
    this.issued.length = 0;
    this.changing = false;
  }
}

export const runRecord = new RunRecord();
