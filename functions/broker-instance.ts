import { createBroker, type Broker } from '../shared/broker';
import type { BrokerConfig } from '../shared/config';

/** The process's broker, built on first use from settings validated once at start-up. */
export function lazyBroker(config: BrokerConfig): () => Broker {
  let instance: Broker | undefined;
  return () => {
    instance ??= createBroker(config);
    return instance;
  };
}
