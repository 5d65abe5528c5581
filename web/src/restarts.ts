/**
 * When the page stops restarting a training worker that keeps dying. A worker that dies, is
 * restarted and dies again before it trained a single step (e.g. one request that blocks the
 * worker longer than the watchdog allows, every time) would otherwise be restarted forever with
 * the page saying "ready"; after `MAX_FRUITLESS_RESTARTS` such restarts in a row the page stops,
 * says why and what to try. Pure, so it is unit-tested.
 */

/** Restarts in a row with no training step in between after which the page gives up. */
export const MAX_FRUITLESS_RESTARTS = 3;

export class RestartPolicy {
  private fruitless = 0;
  /** The step count when the last restarted worker was ready (null before any restart). */
  private readyAt: number | null = null;

  /** A worker died at step `step`: true when it is worth restarting it. */
  died(step: number): boolean {
    const progressed = this.readyAt === null || step > this.readyAt;
    this.fruitless = progressed ? 1 : this.fruitless + 1;
    return this.fruitless <= MAX_FRUITLESS_RESTARTS;
  }

  /** The restarted worker is running the experiment again, from step `step`. */
  restarted(step: number): void {
    this.readyAt = step;
  }

  /** Restarts in a row that trained nothing (for the message). */
  get inARow(): number {
    return this.fruitless;
  }
}
