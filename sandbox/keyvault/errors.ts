/** The errors the real service answers, with its codes and messages (`{"error":{"code","message","innererror"?}}`). */
import type { StoredSecret } from './store';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badParameter = (message: string) => new HttpError(400, 'BadParameter', message);

export const notFound = (name: string, version?: string) =>
  new HttpError(
    404,
    'SecretNotFound',
    `A secret with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );

export const deletedNotFound = (name: string) =>
  new HttpError(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);

/** Why a name in a soft-delete transition cannot be written, recovered or purged right now. */
export function conflictFor(secret: StoredSecret): HttpError {
  switch (secret.state) {
    case 'deleted':
      return new HttpError(
        409,
        'Conflict',
        `Secret ${secret.name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
        'ObjectIsDeletedButRecoverable',
      );
    case 'recovering':
      return new HttpError(
        409,
        'Conflict',
        `Secret ${secret.name} is currently being recovered.`,
        'ObjectIsBeingRecovered',
      );
    default:
      return new HttpError(
        409,
        'Conflict',
        `Secret ${secret.name} is currently being deleted.`,
        'ObjectIsBeingDeleted',
      );
  }
}
