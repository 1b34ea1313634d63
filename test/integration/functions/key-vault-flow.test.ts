import { keyVaultFlowSuite } from '../../support/key-vault-flow-suite';

keyVaultFlowSuite('purge allowed', { purgeProtection: false });
