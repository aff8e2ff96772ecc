/**
 * `/docs` renders in a real browser (Debian's Chromium through playwright-core): the Swagger UI
 * lists the API's operations from the generated OpenAPI document. Skipped with a message where
 * Chromium is absent; under .ci/run (NADIR_REQUIRE_SERVICES=1) it must run.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { buildServer } from '../src/server/app.js';
import { openStore } from '../src/store/open.js';
import { tmp } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('API docs in a browser', () => {
  it('/docs renders every documented operation', async (ctx) => {
    if (!existsSync(CHROMIUM)) {
      if (process.env.NADIR_REQUIRE_SERVICES === '1')
        assert.fail(`${CHROMIUM} not found (apt-get install chromium)`);
      return ctx.skip(`${CHROMIUM} not found (apt-get install chromium); skipped`);
    }
    const dataDir = tmp('nadir-docs-');
    const store = await openStore({ dataDir, databaseUrl: '' });
    const srv = await buildServer({ store, dataDir, apiKeys: ['docs-test-key-0123456789'] });
    await srv.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(srv.app.server.address() as AddressInfo).port}`;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const spec = (await (await fetch(`${base}/api/v1/openapi.json`)).json()) as {
        paths: Record<string, Record<string, unknown>>;
      };
      const operations = Object.values(spec.paths).reduce((n, p) => n + Object.keys(p).length, 0);
      assert.ok(operations >= 15, `${operations} operations in the OpenAPI document`);
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${base}/docs`);
      await page.waitForSelector('.opblock', { timeout: 15_000 });
      assert.equal(await page.locator('.opblock').count(), operations);
      const text = await page.locator('body').innerText();
      for (const path of [
        '/api/v1/detect',
        '/api/v1/threat-detection',
        '/api/v1/anomalies/latest',
        '/api/v1/config',
      ])
        assert.ok(text.includes(path), `${path} shown`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await srv.app.close();
    }
  });
});
