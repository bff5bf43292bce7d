/**
 * Debian's headless Chromium, driven by playwright-core, run inside a test's network namespace
 * (chromium-in-ns.sh), for the status page tests. Screenshots go to <repo>/test-artifacts/
 * (gitignored) for a person to look at.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from './daemon.js';
import { toolMissing } from './tools.js';

const CHROMIUM = '/usr/bin/chromium';
const WRAPPER = path.join(REPO_ROOT, 'test/helpers/chromium-in-ns.sh');
export const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');

// The page functions below run in the browser; the project compiles without the DOM library.
interface PageEl { readonly textContent: string | null; querySelectorAll(sel: string): Iterable<PageEl> }

/** Why the browser tests cannot run here, or false. */
export function chromiumUnavailable(): string | false {
  return toolMissing('chromium');
}

/** Chromium with the flags the status page tests use, its network in namespace `ns`; makes ARTIFACTS. */
export async function launchChromiumInNs(ns: string): Promise<Browser> {
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: WRAPPER,
    env: { ...process.env, MB_CHROMIUM_NETNS: ns, MB_CHROMIUM: CHROMIUM },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 60_000,
  });
}

/** Names of a machine view's timeline steps, per boot attempt, as drawn (left to right). */
export const drawnSteps = (page: Page): Promise<string[][]> =>
  page.$$eval('.attempt .timeline', (tls) => tls.map((tl) => [...(tl as unknown as PageEl).querySelectorAll('b')].map((b) => b.textContent ?? '')));

/** The boxes of each drawn step: position, width and state class, to check the layout. */
export const drawnBoxes = (page: Page): Promise<{ x: number; w: number; cls: string }[]> =>
  page.$$eval('.attempt .timeline > div', (els) => els.map((e) => { const r = e.getBoundingClientRect(); return { x: r.x, w: r.width, cls: e.className }; }));
