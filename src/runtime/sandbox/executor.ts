/**
 * The fast path for running commands: one long-lived `docker exec` per container running a small
 * shell loop (the executor) that reads commands from its stdin and runs them one at a time, so a
 * tool call costs a line written to a socket instead of an exec create + start + inspect.
 *
 * Protocol, one line per command: `<runId> <base64 workdir> <base64 command>`. The command runs
 * as the leader of its own process group (same pid file as the exec path, so kill() works for
 * both), its output goes straight to the executor's stdout/stderr (hence streamed), and when it
 * exits the executor writes an end marker carrying the exit code on stdout and on stderr.
 * Markers are framed by ASCII record/unit separators, which commands do not print in practice;
 * output that only looks like a marker (too long, malformed, or another run's) is passed on as
 * output, so a command cannot hide its output or hang the executor by printing one.
 *
 * Anything unexpected (no base64 or setsid in the image, the stream breaking, a marker not
 * arriving after a kill) retires the executor; the driver then uses plain execs.
 */
import type { Duplex } from 'node:stream';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';

const RS = '\x1e';
const US = '\x1f';
const START = `${RS}${US}TROUPE:`;
/** Longest run id the fast path takes (markers carry it; longer ones take the plain exec path). */
export const MAX_RUN_ID = 200;
/** A whole marker: READY, or `<runId>:<exit code>`. */
const MARKER = new RegExp(`^${START}(READY|([A-Za-z0-9_.-]{1,${MAX_RUN_ID}}):(\\d{1,3}))${RS}\n`);
/** A marker whose end has not arrived yet. Bounded, so at most ~220 characters are ever held back. */
const MARKER_SO_FAR = new RegExp(`^${START}[A-Za-z0-9_.-]{0,${MAX_RUN_ID}}(?::\\d{0,3})?${RS}?$`);

export const EXECUTOR_SCRIPT = [
  'command -v base64 >/dev/null 2>&1 && command -v setsid >/dev/null 2>&1 || { echo "no base64/setsid" >&2; exit 3; }',
  `printf '${'\\036\\037'}TROUPE:READY${'\\036'}\\n'`,
  'while IFS=" " read -r id wd cmd; do',
  '  f=/tmp/.troupe-run-$id.pid',
  '  d=$(printf %s "$wd" | base64 -d); c=$(printf %s "$cmd" | base64 -d)',
  `  ( cd "$d" 2>/dev/null || cd /; TROUPE_CMD="$c" setsid sh -c 'echo $$ > "$0"; c=$TROUPE_CMD; unset TROUPE_CMD; exec sh -c "$c"' "$f" </dev/null ) &`,
  '  wait $! 2>/dev/null; rc=$?; rm -f "$f"',
  `  printf '${'\\036\\037'}TROUPE:%s:%s${'\\036'}\\n' "$id" "$rc"; printf '${'\\036\\037'}TROUPE:%s:%s${'\\036'}\\n' "$id" "$rc" >&2`,
  'done',
].join('\n');

interface Pending {
  id: string;
  onOutput: (stream: 'stdout' | 'stderr', text: string) => void;
  resolve: (exitCode: number | null) => void;
  ended: { stdout: boolean; stderr: boolean };
  code: number | null;
}

/**
 * Splits one output stream into the current command's text and its end markers. Holds back only
 * what may still become a marker (a few hundred characters at most); everything else is text.
 */
export class MarkerScanner {
  private buf = '';
  private readonly decoder = new StringDecoder('utf8');
  /** `onMarker` answers whether the marker was the current run's; if not, it is passed on as text. */
  constructor(private readonly onText: (t: string) => void, private readonly onMarker: (id: string, code: number) => boolean, private readonly onReady: () => void) {}

  /** Characters held back, waiting to see whether they are a marker. */
  get held(): number {
    return this.buf.length;
  }

  write(chunk: Buffer) {
    this.buf += this.decoder.write(chunk);
    for (;;) {
      const at = this.buf.indexOf(START);
      if (at < 0) {
        // Hold back a possible partial marker start at the end.
        const cut = this.buf.length - partialTail(this.buf);
        if (cut > 0) this.onText(this.buf.slice(0, cut));
        this.buf = this.buf.slice(cut);
        return;
      }
      if (at > 0) {
        this.onText(this.buf.slice(0, at));
        this.buf = this.buf.slice(at);
      }
      const m = MARKER.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        if (m[1] === 'READY') this.onReady();
        else if (!this.onMarker(m[2], Number(m[3]))) this.onText(m[0]);
        continue;
      }
      if (MARKER_SO_FAR.test(this.buf)) return; // the rest of the marker is still on its way
      // Output that only looks like a marker: pass its start on as text and scan on after it.
      this.onText(START);
      this.buf = this.buf.slice(START.length);
    }
  }
}

function partialTail(s: string): number {
  for (let n = Math.min(START.length - 1, s.length); n > 0; n--) if (START.startsWith(s.slice(-n))) return n;
  return 0;
}

export class Executor {
  private stream?: Duplex;
  private current?: Pending;
  private alive = false;
  busy = false;

  private constructor(private readonly docker: Docker, readonly containerId: string) {}

  /** Starts the executor; resolves null when the image cannot host one. */
  static async start(docker: Docker, containerId: string, timeoutMs = 3000): Promise<Executor | null> {
    const ex = new Executor(docker, containerId);
    return (await ex.open(timeoutMs)) ? ex : null;
  }

  get usable(): boolean {
    return this.alive && !this.busy;
  }

  /** Takes the executor for one command; false if it is busy or gone. (Check and set in one tick.) */
  tryClaim(): boolean {
    if (!this.usable) return false;
    this.busy = true;
    return true;
  }

  private async open(timeoutMs: number): Promise<boolean> {
    const exec = await this.docker.getContainer(this.containerId).exec({
      Cmd: ['sh', '-c', EXECUTOR_SCRIPT], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, WorkingDir: '/',
    });
    const stream = (await exec.start({ hijack: true, stdin: true, Tty: false })) as Duplex;
    this.stream = stream;
    let ready!: (ok: boolean) => void;
    const readyP = new Promise<boolean>((r) => (ready = r));
    const sink = (name: 'stdout' | 'stderr') => {
      const scanner = new MarkerScanner(
        (t) => this.current?.onOutput(name, t),
        (id, code) => this.ended(id, name, code),
        () => ready(true),
      );
      return new Writable({ write: (c: Buffer, _e, done) => (scanner.write(c), done()) });
    };
    this.docker.modem.demuxStream(stream, sink('stdout'), sink('stderr'));
    const gone = () => this.retire();
    stream.once('end', gone);
    stream.once('close', gone);
    stream.on('error', gone);
    const timer = setTimeout(() => ready(false), timeoutMs);
    this.alive = await readyP;
    clearTimeout(timer);
    if (!this.alive) this.retire();
    return this.alive;
  }

  private ended(id: string, name: 'stdout' | 'stderr', code: number): boolean {
    const p = this.current;
    if (!p || p.id !== id) return false;
    p.ended[name] = true;
    p.code = code;
    if (p.ended.stdout && p.ended.stderr) {
      this.current = undefined;
      this.busy = false;
      p.resolve(code);
    }
    return true;
  }

  /** Runs one command (after tryClaim); resolves with its exit code, or null if the executor died. */
  run(id: string, command: string, workdir: string, onOutput: Pending['onOutput']): Promise<number | null> {
    return new Promise((resolve) => {
      this.current = { id, onOutput, resolve, ended: { stdout: false, stderr: false }, code: null };
      const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
      this.stream!.write(`${id} ${b64(workdir)} ${b64(command)}\n`);
    });
  }

  /** True while the command `id` has not ended. */
  isRunning(id: string): boolean {
    return this.current?.id === id;
  }

  /** Gives up on the executor (e.g. a killed command whose marker never came). */
  retire() {
    if (!this.alive && !this.stream) return;
    this.alive = false;
    const p = this.current;
    this.current = undefined;
    p?.resolve(p.code);
    this.stream?.destroy();
    this.stream = undefined;
  }
}
