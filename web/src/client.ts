/**
 * Typed request/reply wrapper over the training worker.
 *
 * - Every request gets a fresh `id`; the reply with that id settles its promise.
 * - Requests are queued and posted ONE AT A TIME (the worker runs them in order and never
 *   sees two at once), so a slow `step` can never be overtaken by a `density`.
 * - `invalidate()` drops everything queued or in flight (e.g. before a re-init): their promises
 *   reject with `StaleError`, and late replies carrying their ids are ignored.
 * - An `error` reply rejects with `WorkerError`, which keeps the worker's `fields`.
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
  private readyReject!: (e: Error) => void;
  /** Resolves on the worker's `ready` message (the wasm core is loaded). */
  readonly ready: Promise<void>;
  /** Called for `error` replies that belong to no request (e.g. the wasm failed to load). */
  onFatal: (message: string) => void = () => {};

  constructor(private readonly port: Port) {
    this.ready = new Promise<void>((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
    this.ready.catch(() => {}); // observed through onFatal as well
    port.onmessage = (ev: MessageEvent) => this.receive(ev.data as Reply);
  }

  /** Send one request; resolves with its reply (already checked to be the right type). */
  request<T extends Outgoing["type"]>(
    req: Extract<Outgoing, { type: T }>,
    transfer: Transferable[] = [],
  ): Promise<ReplyTo<T>> {
    const id = this.nextId++;
    return new Promise<ReplyTo<T>>((resolve, reject) => {
      this.queue.push({
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
    if (this.inFlight || this.queue.length === 0) return;
    const next = this.queue.shift()!;
    this.inFlight = next;
    this.port.postMessage(next.req, next.transfer);
  }

  private receive(msg: Reply): void {
    if (msg.type === "ready") {
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

/** The reply `type` expected for a request `type`: the same name (one name per operation). */
export function expectedReply(t: Request["type"]): Reply["type"] {
  return t;
}
