/**
 * Shared set-up for the browser tests: serves the built site (`dist/`, or $RFM_DIST) on a
 * loopback port and launches Debian's Chromium through playwright-core (no browser downloads).
 */
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import sirv from "sirv";
import { chromium, type Browser, type Page } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const distDir = process.env.RFM_DIST ?? path.resolve(here, "..", "..", "dist");
export const artifactsDir = path.resolve(here, "..", "artifacts");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

export async function serveDist(): Promise<{ url: string; close: () => Promise<void> }> {
  if (!existsSync(path.join(distDir, "index.html"))) {
    throw new Error(`no built site at ${distDir}: run the site build first (make build)`);
  }
  const handler = sirv(distDir, { dev: true, etag: false });
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface LaunchOptions {
  /** Expose WebGPU (SwiftShader) to pages; without it Chromium has no adapter here. */
  webgpu: boolean;
  /** More Chromium switches (e.g. the soak test's `--js-flags=--expose-gc`). */
  extraArgs?: string[];
}

export async function launch(opts: LaunchOptions): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`Chromium not found at ${chromiumPath} (install Debian's chromium, or set CHROMIUM)`);
  }
  const args = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
  ];
  if (opts.webgpu) args.push("--enable-unsafe-webgpu");
  else args.push("--disable-features=WebGPU");
  args.push(...(opts.extraArgs ?? []));
  return chromium.launch({ executablePath: chromiumPath, headless: true, args });
}

/** Collect console errors and page errors so tests can assert there were none. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  return errors;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
