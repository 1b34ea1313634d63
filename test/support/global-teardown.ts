/** jest globalTeardown: stops the Azurite that global-setup.ts started (globals are shared between the two). */
export default async function globalTeardown(): Promise<void> {
  const azurite = globalThis.__TEST_AZURITE__;
  if (!azurite) return;
  globalThis.__TEST_AZURITE__ = undefined;
  delete process.env.TEST_STORAGE_CONNECTION_STRING;
  await azurite.stop();
}
