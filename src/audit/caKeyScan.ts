/**
 * Find the CA private key on a host without sending any of it there: the host lists candidate
 * files (private-key PEM headers, or exactly the size of the key's DER forms), bounded in time,
 * depth, size and count, and returns their SHA-256 digests; the comparison with the local key's
 * digests happens here. Nothing derived from the key goes on a command line or to the host.
 */
import { createHash, createPrivateKey, type KeyObject } from 'crypto';
import { shq } from '../util/shell';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Pseudo and remote file systems the walk does not enter (a hung NFS mount would eat the budget). */
const PRUNED_FS = ['proc', 'sysfs', 'devtmpfs', 'devpts', 'cgroup', 'cgroup2', 'debugfs', 'tracefs', 'securityfs', 'pstore', 'bpf', 'configfs', 'fusectl', 'mqueue', 'hugetlbfs', 'autofs', 'binfmt_misc', 'nfs', 'nfs4', 'cifs', 'smb3', '9p', 'fuse.sshfs'];

export interface CaKeyDigests {
  /** SHA-256 (hex) of every form the key is recognised in. */
  digests: Set<string>;
  /** Byte sizes of the DER forms: a binary copy is a candidate by size alone. */
  derSizes: number[];
}

/** Digests of the key file, of each PEM block's DER, and of its PKCS#8 and traditional (PKCS#1/SEC1) DER. */
export function caKeyDigests(pem: string): CaKeyDigests {
  const digests = new Set<string>([sha256(pem)]);
  for (const body of pemBodies(pem)) digests.add(sha256(body));
  const key: KeyObject = createPrivateKey(pem);
  const ders = [key.export({ type: 'pkcs8', format: 'der' })];
  if (key.asymmetricKeyType === 'rsa') ders.push(key.export({ type: 'pkcs1', format: 'der' }));
  if (key.asymmetricKeyType === 'ec') ders.push(key.export({ type: 'sec1', format: 'der' }));
  for (const d of ders) digests.add(sha256(d));
  return { digests, derSizes: [...new Set(ders.map((d) => d.length))] };
}

/** DER of each `PRIVATE KEY` block, whatever the line endings or wrapping (what the host computes with base64 -d). */
export function pemBodies(text: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----([\s\S]*?)-----END [A-Z0-9 ]*PRIVATE KEY-----/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) out.push(Buffer.from(m[1].replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'));
  return out;
}

export interface ScanLimits {
  timeoutSec: number;
  maxDepth: number;
  /** Only files smaller than this are read (a PEM key is a few KiB). */
  maxBytes: number;
  /** At most this many candidate files are hashed. */
  maxFiles: number;
}

export const DEFAULT_SCAN_LIMITS: ScanLimits = { timeoutSec: 60, maxDepth: 24, maxBytes: 65536, maxFiles: 5000 };

/**
 * A bash script (sent on stdin, run as root) that prints NUL-terminated records:
 * `H <sha256> <path>` per candidate digest, then `TIMEOUT` / `TRUNCATED` when a bound was hit.
 * Roots are absolute paths validated by the topology model; they are quoted anyway.
 */
export function caKeyScanScript(roots: string[], derSizes: number[], limits: ScanLimits = DEFAULT_SCAN_LIMITS): string {
  const prune = PRUNED_FS.map((t) => `-fstype ${t}`).join(' -o ');
  const sizes = derSizes.map((n) => `-size ${Math.floor(n)}c`).join(' -o ');
  const rootArgs = roots.map(shq).join(' ');
  return `set -u
export LC_ALL=C
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# Walk every file system that holds files (bind mounts too), not pseudo or network ones.
# Files exactly as long as one of the key's DER forms are candidates by size (a binary copy).
: > "$tmp/sized"
timeout -k 5 ${limits.timeoutSec} find ${rootArgs} -maxdepth ${limits.maxDepth} \\( ${prune} \\) -prune -o -type f -size -${limits.maxBytes + 1}c ${sizes ? `\\( \\( ${sizes} \\) -fprint0 "$tmp/sized" -o -true \\) ` : ''}-print0 2>/dev/null > "$tmp/all"
[ $? -eq 124 ] && printf 'TIMEOUT\\0'
sort -zu "$tmp/all" > "$tmp/uniq"
{
  xargs -0r grep -lZE -e '-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----' < "$tmp/uniq" 2>/dev/null
  cat "$tmp/sized"
} | sort -zu > "$tmp/cand"
n=$(tr -cd '\\0' < "$tmp/cand" | wc -c)
[ "$n" -gt ${limits.maxFiles} ] && printf 'TRUNCATED\\0'
have_openssl=0; command -v openssl >/dev/null 2>&1 && have_openssl=1
head -z -n ${limits.maxFiles} "$tmp/cand" | while IFS= read -r -d '' f; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  printf 'H %s %s\\0' "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"
  # each PRIVATE KEY block, decoded: the same DER whatever the line endings
  awk '/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/{b=1;s="";next} /-----END [A-Z0-9 ]*PRIVATE KEY-----/{if(b)print s;b=0;next} b{gsub(/[^A-Za-z0-9+\\/=]/,"");s=s $0}' "$f" 2>/dev/null |
    while IFS= read -r blk; do printf 'H %s %s\\0' "$(printf '%s' "$blk" | base64 -d 2>/dev/null | sha256sum | cut -d' ' -f1)" "$f"; done
  if [ $have_openssl = 1 ]; then
    d=$(openssl pkey -in "$f" -passin pass: -outform DER 2>/dev/null </dev/null | sha256sum | cut -d' ' -f1)
    printf 'H %s %s\\0' "$d" "$f"
  fi
done
exit 0
`;
}

export interface ScanResult {
  found: string[];
  timedOut: boolean;
  truncated: boolean;
  candidates: number;
}

/** Match the host's digests against the local key's. */
export function parseScan(stdout: string, key: CaKeyDigests): ScanResult {
  const found = new Set<string>();
  const files = new Set<string>();
  let timedOut = false;
  let truncated = false;
  for (const rec of stdout.split('\0')) {
    if (rec === 'TIMEOUT') timedOut = true;
    else if (rec === 'TRUNCATED') truncated = true;
    else {
      const m = /^H ([0-9a-f]{64}) (.+)$/s.exec(rec);
      if (!m) continue;
      files.add(m[2]);
      if (key.digests.has(m[1])) found.add(m[2]);
    }
  }
  return { found: [...found].sort(), timedOut, truncated, candidates: files.size };
}
