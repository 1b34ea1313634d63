import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOverAdvice } from '../../../scripts/local-settings';

/**
 * Regression: `npm start` said "delete .broker-local/ to start over", but the connections live in
 * .azurite/: deleted alone, .broker-local/ left connections that looked authorized with their
 * tokens and the sandbox tenant gone. The line names every place, as the README does.
 */
describe("the sandbox's start-over line", () => {
  it('names both folders that keep the sandbox', () => {
    expect(startOverAdvice(['.broker-local/', '.azurite/'])).toBe(
      'to start over, stop npm start and delete .broker-local/ and .azurite/',
    );
  });

  it('names a state file kept elsewhere, once', () => {
    expect(startOverAdvice(['/tmp/sandbox.json', '.broker-local/', '.broker-local/', '.azurite/'])).toBe(
      'to start over, stop npm start and delete /tmp/sandbox.json, .broker-local/ and .azurite/',
    );
  });

  it('is what the README says', () => {
    const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    expect(readme).toContain(`across restarts; ${startOverAdvice(['.broker-local/', '.azurite/'])}.`);
    expect(readme).toContain(
      '**To start over, stop `npm start` and delete both `.broker-local/` and `.azurite/`**',
    );
  });
});
