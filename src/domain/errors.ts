// The domain speaks errors, not statuses: http/problem.ts maps each code to one.
export type DomainErrorCode =
  | 'invalid_request'
  | 'not_found'
  /** A request id older than the retention horizon, no longer stored. */
  | 'request_pruned'
  | 'gone'
  | 'version_conflict'
  | 'handle_in_use'
  | 'conflict'
  /** A tenant's name another tenant already has (compared ignoring case and extra whitespace). */
  | 'tenant_name_taken'
  /** A tenant's time zone changed after it had a reconciled request: its days are counted in the zone it had. */
  | 'time_zone_fixed'
  /** Preserved thinking: a session's thinking block would be sent under another prefix than it was produced under. */
  | 'thinking_prefix_changed'
  | 'unauthorized'
  | 'malformed_json';

export interface ErrorDetailItem {
  /** JSON pointer (RFC 6901) of the failing place in the request body, or a parameter name. */
  pointer: string;
  detail: string;
}

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly errors: ErrorDetailItem[] = [],
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string) => new DomainError('not_found', `${what} does not exist`);

/** The same error, pointing at what named the missing or refused thing. */
export function withPointer(err: DomainError, pointer: string): DomainError {
  return new DomainError(err.code, err.message, err.extra, [{ pointer, detail: err.message }]);
}

/** A call of a tenant deleted while it was under way (authenticated before): its key is gone, as for its next call. */
export const tenantDeleted = () => new DomainError('unauthorized', 'the API key is not valid: its tenant was deleted');

export function invalid(pointer: string, detail: string): DomainError {
  return new DomainError('invalid_request', detail, {}, [{ pointer, detail }]);
}
