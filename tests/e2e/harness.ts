/**
 * Shared set-up for the browser tests: serves the built site (`dist/`, or $RFM_DIST) on a
 * loopback port and launches Debian's Chromium through playwright-core, or Debian's Firefox ESR
 * through puppeteer-core over WebDriver BiDi (no browser downloads). `Driven` is the small page
 * surface the cross-browser tests use, with one adapter per driver.
 */
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import sirv from "sirv";
import { chromium, type Browser, type Page } from "playwright-core";
import puppeteer, { type Browser as PBrowser, type Page as PPage } from "puppeteer-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const distDir = process.env.RFM_DIST ?? path.resolve(here, "..", "..", "dist");
export const artifactsDir = path.resolve(here, "..", "artifacts");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const firefoxPath = process.env.FIREFOX ?? "/usr/bin/firefox-esr";

/**
 * Serve dist/ on a free port. `isolated` (the default) sends the COOP/COEP headers `trunk serve`
 * sends (Trunk.toml), so the page is cross-origin isolated and may run the threaded module;
 * without them the page's service worker (coi-serviceworker) has to add them.
 */
export async function serveDist(opts: { isolated?: boolean } = {}): Promise<{ url: string; close: () => Promise<void> }> {
  if (!existsSync(path.join(distDir, "index.html"))) {
    throw new Error(`no built site at ${distDir}: run the site build first (make build)`);
  }
  const isolated = opts.isolated ?? true;
  const handler = sirv(distDir, {
    dev: true,
    etag: false,
    setHeaders: (res) => {
      if (!isolated) return;
      res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
      res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    },
  });
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

/** Collect console warnings (a page that loads cleanly logs none). */
export function watchWarnings(page: Page): string[] {
  const warnings: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "warning") warnings.push(m.text());
  });
  return warnings;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Firefox ESR (Debian's), headless, over WebDriver BiDi. */
export async function launchFirefox(): Promise<PBrowser> {
  if (!existsSync(firefoxPath)) {
    throw new Error(`Firefox not found at ${firefoxPath} (install Debian's firefox-esr: scripts/setup.sh, or set FIREFOX)`);
  }
  return puppeteer.launch({ browser: "firefox", executablePath: firefoxPath, protocol: "webDriverBiDi", headless: true });
}

/** The page operations the cross-browser tests need, the same in Chromium and Firefox. */
export interface Driven {
  readonly browser: "chromium" | "firefox";
  /** Page errors and console errors so far. */
  readonly errors: string[];
  goto(url: string): Promise<void>;
  evaluate<T, A>(fn: (arg: A) => T | Promise<T>, arg: A): Promise<T>;
  /** Wait until `fn(arg)` is truthy in the page. */
  waitFor<A>(fn: (arg: A) => unknown, arg: A, timeoutMs: number): Promise<void>;
  select(selector: string, value: string): Promise<void>;
  /** Type into a text input and commit it (change event). */
  fill(selector: string, value: string): Promise<void>;
  click(selector: string): Promise<void>;
  screenshot(file: string): Promise<void>;
  close(): Promise<void>;
}

/** A new Chromium page of the given width as a `Driven`. */
export async function chromiumPage(browser: Browser, width: number, height = 1000): Promise<Driven> {
  const page = await browser.newPage({ viewport: { width, height } });
  const errors = watchErrors(page);
  return {
    browser: "chromium",
    errors,
    goto: async (url) => void (await page.goto(url)),
    evaluate: (fn, arg) => page.evaluate(fn as never, arg) as never,
    waitFor: async (fn, arg, timeout) => void (await page.waitForFunction(fn as never, arg, { timeout, polling: 200 })),
    select: async (sel, value) => void (await page.selectOption(sel, value)),
    fill: async (sel, value) => {
      await page.fill(sel, value);
      await page.press(sel, "Enter");
    },
    click: (sel) => page.click(sel),
    screenshot: async (file) => void (await page.screenshot({ path: file, fullPage: true })),
    close: () => page.close(),
  };
}

/** A new Firefox page of the given width as a `Driven`. */
export async function firefoxPage(browser: PBrowser, width: number, height = 1000): Promise<Driven> {
  const page: PPage = await browser.newPage();
  await page.setViewport({ width, height });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  return {
    browser: "firefox",
    errors,
    goto: async (url) => void (await page.goto(url)),
    evaluate: (fn, arg) => page.evaluate(fn as never, arg) as never,
    waitFor: async (fn, arg, timeout) => void (await page.waitForFunction(fn as never, { timeout, polling: 200 }, arg)),
    select: async (sel, value) => void (await page.select(sel, value)),
    fill: async (sel, value) => {
      await page.$eval(sel, (e, v) => {
        const input = e as HTMLInputElement;
        input.value = v as string;
        input.dispatchEvent(new Event("change", { bubbles: true }));
      }, value);
    },
    click: (sel) => page.click(sel),
    screenshot: async (file) => void (await page.screenshot({ path: file as `${string}.png`, fullPage: true })),
    close: () => page.close(),
  };
}

/**
 * What is drawn on each visible canvas of the page: id, size, how many distinct colours
 * (capped at 64), the share of painted (non-transparent) pixels, and a hash of the pixels.
 * Run in the page (no helpers outside the function: the bundler would rename them).
 */
export interface CanvasSig {
  id: string;
  w: number;
  h: number;
  colours: number;
  painted: number;
  hash: number;
  /** The reason, when the canvas (or its card) says its panel does not apply. */
  notApplicable: string | null;
}

export function canvasSignatures(): CanvasSig[] {
  const out: CanvasSig[] = [];
  for (const c of Array.from(document.querySelectorAll("canvas"))) {
    const r = c.getBoundingClientRect();
    if (c.hidden || r.width === 0 || r.height === 0 || getComputedStyle(c).display === "none" || c.offsetParent === null) continue;
    const ctx = c.getContext("2d");
    if (!ctx || c.width === 0 || c.height === 0) continue;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set<number>();
    let painted = 0;
    let hash = 2166136261;
    for (let i = 0; i < d.length; i += 4) {
      const a = d[i + 3];
      if (a > 0) painted++;
      const v = a === 0 ? 0 : ((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | a) >>> 0;
      if (colours.size < 64) colours.add(v);
      hash = Math.imul(hash ^ v, 16777619) >>> 0;
    }
    const na = (c.closest("[data-not-applicable]") as HTMLElement | null)?.dataset.notApplicable ?? c.dataset.notApplicable ?? null;
    out.push({ id: c.id, w: c.width, h: c.height, colours: colours.size, painted: painted / (d.length / 4), hash, notApplicable: na });
  }
  return out;
}
