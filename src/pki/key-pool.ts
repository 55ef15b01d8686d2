/**
 * RSA keys made ahead of need on worker threads, one per core. A command that will issue N leaves
 * starts the pool before preflight (SSH, mostly waiting), so the seconds of prime search overlap it;
 * the certificate step then takes finished keys. Workers are unref'd except while someone waits
 * on a key, end when their share is done, and are terminated by close(): the pool never keeps
 * the process alive. More takes than planned fall back to Node's own (libuv) generator.
 */
import crypto, { KeyObject } from 'crypto';
import os from 'os';
import { promisify } from 'util';
import { Worker } from 'worker_threads';
import { CertError } from '../errors';
import { RSA_BITS } from './keys';

/** Plain JS run with `eval: true`: no file to resolve from dist/ or from ts-jest. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('worker_threads');
const crypto = require('crypto');
parentPort.on('message', () => {
  const { privateKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: workerData.bits, publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'der' }, publicKeyEncoding: { type: 'spki', format: 'der' },
  });
  parentPort.postMessage(privateKey, [privateKey.buffer]);
});
`;

const generateKeyPairAsync = promisify(crypto.generateKeyPair);

export interface KeyPoolOptions {
  /** Worker threads; default os.availableParallelism(), never more than the keys planned. */
  threads?: number;
  /** Modulus size; default RSA_BITS. Only tests change it. */
  bits?: number;
}

export interface KeyPoolStats {
  planned: number;
  threads: number;
  /** Keys handed out that a worker made. */
  fromWorkers: number;
  /** Keys handed out that were made on demand because the pool had none left to come. */
  onDemand: number;
}

interface Waiter {
  resolve: (k: KeyObject) => void;
  reject: (e: Error) => void;
}

export class RsaKeyPool {
  readonly #bits: number;
  readonly #ready: KeyObject[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #workers = new Set<Worker>();
  /** Keys no worker has been asked for yet. */
  #unasked: number;
  #inFlight = 0;
  #error?: CertError;
  #closed = false;
  readonly #stats: KeyPoolStats;

  constructor(planned: number, opts: KeyPoolOptions = {}) {
    if (!Number.isInteger(planned) || planned < 0) throw new CertError(`key pool size must be a whole number, got ${planned}`);
    this.#bits = opts.bits ?? RSA_BITS;
    this.#unasked = planned;
    const threads = Math.max(0, Math.min(planned, opts.threads ?? os.availableParallelism()));
    this.#stats = { planned, threads, fromWorkers: 0, onDemand: 0 };
    for (let i = 0; i < threads; i++) this.#startWorker();
  }

  get stats(): KeyPoolStats {
    return { ...this.#stats };
  }

  /** The next key: a pooled one, or one made now when the pool has none left to come. */
  take(): Promise<KeyObject> {
    const key = this.#ready.shift();
    if (key) {
      this.#stats.fromWorkers++;
      return Promise.resolve(key);
    }
    if (this.#error) return Promise.reject(this.#error);
    if (!this.#closed && this.#waiters.length < this.#unasked + this.#inFlight) {
      return new Promise<KeyObject>((resolve, reject) => {
        this.#waiters.push({ resolve, reject });
        this.#refWorkers();
      });
    }
    this.#stats.onDemand++;
    return generateKeyPairAsync('rsa', { modulusLength: this.#bits, publicExponent: 0x10001 }).then((p) => p.privateKey);
  }

  /** Stop every worker; keys not taken are dropped. Waiters get an error (the command is ending). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unasked = 0;
    this.#fail(undefined);
    await Promise.all([...this.#workers].map((w) => w.terminate()));
    this.#workers.clear();
  }

  #startWorker(): void {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { bits: this.#bits } });
    this.#workers.add(w);
    w.on('message', (der: Uint8Array) => {
      if (this.#error || this.#closed) return;
      this.#inFlight--;
      const key = crypto.createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
      const waiter = this.#waiters.shift();
      if (waiter) {
        this.#stats.fromWorkers++;
        waiter.resolve(key);
      } else this.#ready.push(key);
      if (this.#waiters.length === 0) this.#unrefWorkers();
      this.#askOrStop(w);
    });
    w.on('error', (e) => this.#fail(new CertError(`RSA key generation failed in a worker thread: ${e.message}`, { suggestion: 'run again; if it persists, check that Node.js can start worker threads here (memory, ulimit -u)', cause: e })));
    w.on('exit', (code) => {
      if (!this.#workers.delete(w)) return; // retired or terminated on purpose
      if (code !== 0 && !this.#closed) this.#fail(new CertError(`an RSA key worker thread exited with code ${code}`, { suggestion: 'run again; if it persists, check memory and ulimit -u on this machine' }));
    });
    w.unref(); // after the listeners: adding a 'message' listener refs the worker's port again
    this.#askOrStop(w);
  }

  #askOrStop(w: Worker): void {
    if (this.#unasked > 0 && !this.#closed) {
      this.#unasked--;
      this.#inFlight++;
      w.postMessage(0);
    } else {
      this.#workers.delete(w);
      void w.terminate();
    }
  }

  /** A failed worker fails the pool: keys already made stay usable, waiters and later takes get the error. */
  #fail(error: CertError | undefined): void {
    if (error && !this.#error && !this.#closed) {
      this.#error = error;
      for (const w of this.#workers) void w.terminate();
      this.#workers.clear();
      this.#unasked = 0;
      this.#inFlight = 0;
    }
    const reason = error ?? new CertError('the RSA key pool was closed before a key was ready');
    for (const w of this.#waiters.splice(0)) w.reject(this.#error ?? reason);
  }

  #refWorkers(): void {
    for (const w of this.#workers) w.ref();
  }

  #unrefWorkers(): void {
    for (const w of this.#workers) w.unref();
  }
}
