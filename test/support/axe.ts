import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';

let source: string | undefined;

/** One violation as a test failure reads it. */
export interface Finding {
  rule: string;
  impact: string;
  help: string;
  targets: string[];
}

/**
 * Runs axe-core in the page and returns its serious and critical violations. axe.min.js is put in
 * with page.evaluate rather than page.addScriptTag: the broker's pages allow only scripts carrying
 * the response's nonce, and the test must not switch that policy off (bypassCSP) to see them.
 */
export async function seriousViolations(page: Page): Promise<Finding[]> {
  source ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate('typeof window.axe === "object"'))) await page.evaluate(source);
  // A string: the test's tsconfig has no DOM types, and this runs in the page.
  const findings = await page.evaluate<Finding[]>(
    `axe.run(document, { resultTypes: ['violations'] }).then((result) => result.violations.map((violation) => ({
      rule: violation.id, impact: violation.impact || 'unknown', help: violation.help,
      targets: violation.nodes.map((node) => node.target.join(' ')) })))`,
  );
  return findings.filter((finding) => finding.impact === 'serious' || finding.impact === 'critical');
}

/** axe in the light and the dark colour scheme: the findings of both, each named with its scheme. */
export async function seriousViolationsInBothSchemes(page: Page): Promise<(Finding & { scheme: string })[]> {
  const all: (Finding & { scheme: string })[] = [];
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    all.push(...(await seriousViolations(page)).map((finding) => ({ ...finding, scheme: colorScheme })));
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return all;
}
