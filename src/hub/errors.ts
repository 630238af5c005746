// One error type for everything the hub code reports, with a kind callers (and retries) can branch on.
export type HubErrorKind =
  | 'offline' // HF_HUB_OFFLINE and not in the cache
  | 'auth' // 401: a token is needed or was rejected
  | 'gated' // gated repo: terms not accepted by the token's account
  | 'forbidden' // 403 for another reason
  | 'not-found' // repo, revision or file does not exist
  | 'network' // cannot reach the endpoint
  | 'interrupted' // the connection dropped mid-download (resumable)
  | 'integrity' // size or hash mismatch
  | 'unverified' // nothing to check the content against (no hash ETag or no size), and no opt-out
  | 'server' // 5xx
  | 'invalid'; // bad id, bad response

export class HubError extends Error {
  constructor(message: string, readonly kind: HubErrorKind, readonly status?: number) {
    super(message);
    this.name = 'HubError';
  }

  /** Worth another attempt: the next try may succeed (and resumes where this one stopped). */
  get retryable(): boolean {
    return this.kind === 'network' || this.kind === 'interrupted' || this.kind === 'integrity' || this.kind === 'server';
  }
}

/** The low-level reason under a fetch failure ("ECONNREFUSED", "other side closed", ...). */
export function causeOf(e: unknown): string {
  let c: any = e;
  while (c?.cause) c = c.cause;
  return c?.code ?? c?.message ?? String(e);
}
