import { keyVaultFlowSuite } from '../../support/key-vault-flow-suite';

keyVaultFlowSuite('purge protection on', { purgeProtection: true });
