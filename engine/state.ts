// The engine's record of a stack: one JSON file per stack, `<state dir>/stacks/<stack>.json`,
// written atomically (temp file, fsync, rename) after EVERY resource operation, so a killed `up`
// loses nothing it did. Secrets are stored as Pulumi stores them, `{<sig>: <secret sig>,
// ciphertext}`, encrypted with AES-256-GCM under a key kept beside the file (`<stack>.key`, 0600):
// the file itself can be read, copied and grepped without exposing a secret.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { labStateDir } from "../lab/config";
import { isSecretWrapper, Props, SECRET_SIG, secretWrapper, SIG_KEY } from "./wire";

export interface ResourceState {
  readonly urn: string;
  readonly type: string;
  /** False for components (and the stack): nothing to call a provider for. */
  readonly custom: boolean;
  readonly id: string;
  readonly parent?: string;
  /** URNs this resource depends on (dependsOn and the resources its inputs came from). */
  readonly dependencies: readonly string[];
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  /** Wire form: secret values in `{<sig>, value}` wrappers in memory, encrypted on disk. */
  readonly inputs: Props;
  readonly outputs: Props;
  readonly additionalSecretOutputs: readonly string[];
  /** Set when create or update failed half-way (ErrorResourceInitFailed): the next `up` updates it. */
  readonly initErrors?: readonly string[];
  /** The old half of a create-before-delete replacement, still to delete (Pulumi's `delete: true`). */
  readonly pendingDelete?: boolean;
}

export interface StackSnapshot {
  readonly project: string;
  readonly stack: string;
  readonly resources: readonly ResourceState[];
}

interface StoredFile extends StackSnapshot {
  readonly version: 1;
  readonly updated: string;
}

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(labStateDir(env), "stacks");
}

export class StateStore {
  readonly file: string;
  readonly keyFile: string;
  private key?: Buffer;

  constructor(
    readonly dir: string,
    readonly stack: string,
  ) {
    if (!/^[A-Za-z0-9._-]+$/.test(stack)) throw new Error(`stack name ${JSON.stringify(stack)} is not a plain file name; use letters, digits, . _ -`);
    this.file = path.join(dir, `${stack}.json`);
    this.keyFile = path.join(dir, `${stack}.key`);
  }

  /**
   * Takes `<stack>.lock` for this process, as `pulumi` locks a stack during an update: two engines
   * writing one state file would each lose the other's operations. A lock whose process is gone
   * (a killed engine) is taken over. Returns the release function.
   */
  lock(): () => void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const lockFile = path.join(this.dir, `${this.stack}.lock`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(lockFile, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
        return () => fs.rmSync(lockFile, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const holder = Number(fs.readFileSync(lockFile, "utf8").trim());
        if (Number.isInteger(holder) && holder > 0 && processAlive(holder)) {
          throw new Error(`stack ${this.stack} is being updated by process ${holder} (${lockFile}); wait for it to finish, or stop it`);
        }
        fs.rmSync(lockFile, { force: true }); // its engine died: take over
      }
    }
    throw new Error(`could not take ${lockFile}: another engine took it at the same moment; run again`);
  }

  exists(): boolean {
    return fs.existsSync(this.file);
  }

  load(project: string): StackSnapshot {
    if (!this.exists()) return { project, stack: this.stack, resources: [] };
    const stored = JSON.parse(fs.readFileSync(this.file, "utf8")) as StoredFile;
    if (stored.version !== 1) throw new Error(`${this.file} has state version ${stored.version}; this engine reads version 1`);
    const key = this.readKey();
    return { project: stored.project, stack: stored.stack, resources: stored.resources.map((r) => mapSecrets(r, (c) => decrypt(key, c))) };
  }

  save(snapshot: StackSnapshot): void {
    const key = this.readKey();
    const stored: StoredFile = {
      version: 1,
      project: snapshot.project,
      stack: snapshot.stack,
      updated: new Date().toISOString(),
      resources: snapshot.resources.map((r) => mapSecrets(r, (v) => encrypt(key, v))),
    };
    writeAtomically(this.file, JSON.stringify(stored, null, 1) + "\n");
  }

  private readKey(): Buffer {
    if (this.key) return this.key;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (!fs.existsSync(this.keyFile)) {
      if (this.exists()) throw new Error(`${this.file} exists but its key ${this.keyFile} does not: its secrets cannot be read; restore the key file`);
      // wx: two engines starting at once never overwrite each other's key.
      fs.writeFileSync(this.keyFile, crypto.randomBytes(32).toString("hex") + "\n", { mode: 0o600, flag: "wx" });
    }
    fs.chmodSync(this.keyFile, 0o600);
    const key = Buffer.from(fs.readFileSync(this.keyFile, "utf8").trim(), "hex");
    if (key.length !== 32) throw new Error(`${this.keyFile} must hold 32 bytes as hex (64 characters); it holds ${key.length} bytes`);
    this.key = key;
    return key;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Applies `fn` to every secret of a resource's inputs and outputs (both directions). */
function mapSecrets(r: ResourceState, fn: (secret: Props) => Props): ResourceState {
  const walk = (v: unknown): unknown => {
    if (typeof v === "object" && v !== null && (v as Props)[SIG_KEY] === SECRET_SIG) return fn(v as Props);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return { ...r, inputs: walk(r.inputs) as Props, outputs: walk(r.outputs) as Props };
}

function encrypt(key: Buffer, secret: Props): Props {
  if (!isSecretWrapper(secret)) return secret; // already ciphertext
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(secret.value ?? null), "utf8"), cipher.final()]);
  return { [SIG_KEY]: SECRET_SIG, ciphertext: `v1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64")}` };
}

function decrypt(key: Buffer, stored: Props): Props {
  const text = stored.ciphertext;
  if (typeof text !== "string" || !text.startsWith("v1:")) return stored;
  const raw = Buffer.from(text.slice(3), "base64");
  const decipher = crypto.createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  const plain = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  return secretWrapper(JSON.parse(plain));
}

/** Temp file in the same directory, fsync, rename over, fsync the directory: all or nothing. */
function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, "w", 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dirFd = fs.openSync(path.dirname(file), "r");
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}
