import { createBroker, type Broker } from '../shared/broker';
import { loadConfig } from '../shared/config';

let instance: Broker | undefined;

/** The process's broker, built on first use from the validated settings. */
export function broker(): Broker {
  instance ??= createBroker(loadConfig());
  return instance;
}
