/**
 * Share links: the whole config lives in the URL fragment, encoded and decoded by the worker
 * (versioned, opaque to the page). A link that cannot be read falls back to the defaults with
 * a message; nothing here throws for a bad link.
 */
import { WorkerError, type WorkerClient } from "./client";
import type { PlaygroundConfig } from "./protocol";
import { fragmentFromHash } from "./state";

export interface StartConfig {
  config: PlaygroundConfig;
  defaults: PlaygroundConfig;
  /** Set when the link was unusable: what to tell the user. */
  notice: string | null;
}

type Client = Pick<WorkerClient, "request">;

/** The config to start with: the link's if it decodes and validates, else the defaults. */
export async function startConfig(client: Client, hash: string): Promise<StartConfig> {
  const defaults = (await client.request({ type: "defaults", mode: "rl" })).config;
  const fragment = fragmentFromHash(hash);
  if (fragment === null) return { config: defaults, defaults, notice: null };
  try {
    const decoded = (await client.request({ type: "decodeShare", fragment })).config;
    const { errors } = await client.request({ type: "validate", config: decoded });
    if (errors.length > 0) {
      const list = errors.map((e) => `${e.field}: ${e.message}`).join("; ");
      return { config: defaults, defaults, notice: linkNotice(`it holds settings that are not allowed (${list})`) };
    }
    return { config: decoded, defaults, notice: null };
  } catch (e) {
    if (e instanceof WorkerError) return { config: defaults, defaults, notice: linkNotice(e.message) };
    throw e;
  }
}

/** The message shown for an unusable link. */
export function linkNotice(reason: string): string {
  return `This share link could not be opened: ${reason}. Showing the default experiment instead.`;
}

/** Write the config's share fragment into the address bar (no new history entry). */
export async function syncFragment(client: Client, config: PlaygroundConfig): Promise<string> {
  const { fragment } = await client.request({ type: "encodeShare", config });
  if (typeof history !== "undefined") history.replaceState(null, "", `#${fragment}`);
  return fragment;
}
