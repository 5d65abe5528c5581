/**
 * Typed request/reply wrapper over the training worker.
 *
 * - Every request gets a fresh `id`; the reply with that id settles its promise.
 * - Requests are queued and posted ONE AT A TIME (the worker runs them in order and never
 *   sees two at once), so a slow `step` can never be overtaken by a `density`.
 * - `invalidate()` drops everything queued or in flight (e.g. before a re-init): their promises
 *   reject with `StaleError`, and late replies carrying their ids are ignored.
 * - An `error` reply rejects with `WorkerError`, which keeps the worker's `fields`.
 * - A dead worker is noticed: `fail(why)` (the Worker's `error` event, wired by the page) or a
 *   request in flight with no word from the worker (no reply, no heartbeat) for `deadAfterMs`
 *   rejects everything with `WorkerDeadError` and calls `onDead` once. The client is then
 *   finished; the page builds a new worker and a new client.
 */
import type { FieldError, Reply, Request } from "./protocol";

/** Anything with the Worker's messaging surface (a real Worker, or a fake in tests). */
export interface Port {
  postMessage(msg: unknown, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent) => void) | null;
}

/** A request as the caller writes it: the client adds the id. */
export type Outgoing = Request extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

/** The reply that answers a request of type `T`: the reply of the same `type`. */
export type ReplyTo<T extends Request["type"]> = Extract<Reply, { type: T }>;

/** The worker died or stopped answering; every request of this client rejects with it. */
export class WorkerDeadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WorkerDeadError";
  }
}

/** Default silence (ms) with a request in flight after which the worker counts as dead. */
export const DEAD_AFTER_MS = 60_000;

/** Thrown for requests dropped by `invalidate()`; callers usually ignore it. */
export class StaleError extends Error {
  constructor() {
    super("request dropped (stale)");
    this.name = "StaleError";
  }
}

/** The worker answered `{type: "error"}`. */
export class WorkerError extends Error {
  readonly fields: FieldError[];
  constructor(message: string, fields: FieldError[] = []) {
    super(message);
    this.name = "WorkerError";
    this.fields = fields;
  }
}

interface Pending {
  /** When it was posted to the worker (ms, performance.now); 0 while queued. */
  sentAt: number;
  id: number;
  req: Request;
  transfer: Transferable[];
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

export class WorkerClient {
  private nextId = 1;
  private queue: Pending[] = [];
  private inFlight: Pending | null = null;
  private readyResolve!: () => void;
  /** The CPU module the worker loaded (`cpu` or `relaxed`), once ready. */
  module = "";
  private readyReject!: (e: Error) => void;
  /** Resolves on the worker's `ready` message (the wasm core is loaded). */
  readonly ready: Promise<void>;
  /** Called for `error` replies that belong to no request (e.g. the wasm failed to load). */
  onFatal: (message: string) => void = () => {};
  /** Called once when the worker is found dead (see `fail`). */
  onDead: (why: string) => void = () => {};
  /** Set once the worker is dead: the reason. */
  dead: string | null = null;
  /** When the worker last said anything (a reply or a heartbeat), ms (performance.now). */
  private lastHeard = 0;
  private watchdog: ReturnType<typeof setInterval> | null = null;

  /**
   * `deadAfterMs`: silence with a request in flight after which the worker counts as dead (the
   * worker sends a heartbeat every second while it can; a long wasm call blocks it, so this is
   * generous).
   */
  constructor(
    private readonly port: Port,
    private readonly deadAfterMs = DEAD_AFTER_MS,
  ) {
    this.ready = new Promise<void>((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
    this.ready.catch(() => {}); // observed through onFatal as well
    port.onmessage = (ev: MessageEvent) => this.receive(ev.data as Reply);
    this.lastHeard = now();
    this.watchdog = setInterval(() => this.check(), Math.min(1000, Math.max(50, this.deadAfterMs / 4)));
    // (Node, in the unit tests: the watchdog must not keep the process alive.)
    (this.watchdog as unknown as { unref?: () => void }).unref?.();
  }

  /** The worker is gone (its `error` event, or it stopped answering): reject everything, once. */
  fail(why: string): void {
    if (this.dead !== null) return;
    this.dead = why;
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
    const all = this.inFlight ? [this.inFlight, ...this.queue] : [...this.queue];
    this.inFlight = null;
    this.queue = [];
    for (const p of all) p.reject(new WorkerDeadError(why));
    this.readyReject(new WorkerDeadError(why));
    this.onDead(why);
  }

  /** Stop the watchdog (the page is done with this client). */
  close(): void {
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  private check(): void {
    if (this.dead !== null || !this.inFlight) return;
    const silent = now() - Math.max(this.lastHeard, this.inFlight.sentAt);
    if (silent > this.deadAfterMs) {
      this.fail(`the training worker stopped responding (no answer to “${this.inFlight.req.type}” for ${Math.round(silent / 1000)} s)`);
    }
  }

  /** Send one request; resolves with its reply (already checked to be the right type). */
  request<T extends Outgoing["type"]>(
    req: Extract<Outgoing, { type: T }>,
    transfer: Transferable[] = [],
  ): Promise<ReplyTo<T>> {
    const id = this.nextId++;
    return new Promise<ReplyTo<T>>((resolve, reject) => {
      if (this.dead !== null) {
        reject(new WorkerDeadError(this.dead));
        return;
      }
      this.queue.push({
        sentAt: 0,
        id,
        req: { ...req, id } as Request,
        transfer,
        resolve: resolve as (r: Reply) => void,
        reject,
      });
      this.pump();
    });
  }

  /** Number of requests waiting or in flight. */
  get busy(): number {
    return this.queue.length + (this.inFlight ? 1 : 0);
  }

  /** Drop every queued and in-flight request; their replies, if any arrive, are ignored. */
  invalidate(): void {
    const dropped = this.inFlight ? [this.inFlight, ...this.queue] : [...this.queue];
    this.queue = [];
    // The in-flight request stays "busy" until its reply arrives, so the worker still sees
    // one request at a time; we just stop caring about its answer.
    if (this.inFlight) this.inFlight = { ...this.inFlight, resolve: () => {}, reject: () => {} };
    for (const p of dropped) p.reject(new StaleError());
  }

  private pump(): void {
    if (this.inFlight || this.queue.length === 0 || this.dead !== null) return;
    const next = this.queue.shift()!;
    next.sentAt = now();
    this.inFlight = next;
    this.port.postMessage(next.req, next.transfer);
  }

  private receive(msg: Reply): void {
    this.lastHeard = now();
    if (msg.type === "heartbeat") return;
    if (msg.type === "ready") {
      this.module = msg.module;
      this.readyResolve();
      return;
    }
    if (msg.type === "error" && msg.id === null) {
      this.readyReject(new WorkerError(msg.message));
      this.onFatal(msg.message);
      return;
    }
    const p = this.inFlight;
    if (!p || msg.id !== p.id) return; // stale or unknown: drop
    this.inFlight = null;
    if (msg.type === "error") p.reject(new WorkerError(msg.message, msg.fields ?? []));
    else if (msg.type !== expectedReply(p.req.type)) {
      p.reject(new WorkerError(`worker answered ${p.req.type} with ${msg.type}`));
    } else p.resolve(msg);
    this.pump();
  }
}

const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());

/** The reply `type` expected for a request `type`: the same name (one name per operation). */
export function expectedReply(t: Request["type"]): Reply["type"] {
  return t;
}
