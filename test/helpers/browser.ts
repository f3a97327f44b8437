// Debian's Chromium, driven by playwright-core, against a test app served on a loopback port: the dashboard's
// browser tests share this setup (one browser per test file).

import { serve, type ServerType } from '@hono/node-server';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import type { TestApp } from './app';

export const CHROMIUM = '/usr/bin/chromium';

// Fail, never skip: CI installs Chromium, so a missing one is a broken machine. Each
// test fails on its own with this message (a failing hook would only mark them skipped).
export const chromiumMissing = existsSync(CHROMIUM)
  ? null
  : `the dashboard browser tests need Chromium at ${CHROMIUM}: install it with "apt-get install -y chromium" (.ci/run does this when it is missing)`;

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });

/** The app on a loopback port the system picks; `base`: its origin. */
export async function serveApp(t: TestApp): Promise<{ server: ServerType; base: string }> {
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export const closeServer = (server: ServerType | undefined) => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
