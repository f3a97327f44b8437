import { contentDigestHeader, sha256Hex } from '../digest';
import type { HandleService } from '../handles';
import { Lru } from '../lru';
import { RENDERER_VERSION, renderExpansion } from './formats';
import type { ExpansionFormat } from './prompt';

export interface Expansion {
  ref: string;
  version: number;
  format: ExpansionFormat;
  bytes: Buffer;
  /** sha256 hex of bytes. */
  digest: string;
  contentDigest: string;
  /** Response headers, built once per expansion (it is immutable). */
  headers: Record<string, string>;
  notModifiedHeaders: Record<string, string>;
}

/**
 * Expands a ref in a format. A version is immutable, so its rendered bytes
 * are kept in memory after the first render (bounded by a byte budget).
 */
export class Expander {
  private readonly cache: Lru<string, Expansion>;

  constructor(
    private readonly handles: HandleService,
    cacheBytes = 256 * 1024 * 1024,
  ) {
    this.cache = new Lru(cacheBytes, (e) => e.bytes.length + 256);
  }

  /** After a tenant's deletion: no expansion of its handles stays in memory. */
  clear(): void {
    this.cache.clear();
  }

  expand(tenantId: string, refText: string, format: ExpansionFormat): Expansion {
    // Resolving checks tenant, existence and deletion on every call, cached bytes or not.
    const { handle, version, ref } = this.handles.resolve(tenantId, refText);
    const key = `${ref}:${format}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const bytes = Buffer.from(renderExpansion(format, this.handles.segmentsOf(handle, version.version)), 'utf8');
    const digest = sha256Hex(bytes);
    // Few headers, on purpose: each costs on the hottest route. Shared caches do not reuse answers
    // to requests carrying Authorization (RFC 9111), so no Cache-Control is needed.
    const notModifiedHeaders = {
      ETag: `"${digest}"`,
      'X-Handle-Version': String(version.version),
      'X-Renderer-Version': String(RENDERER_VERSION),
    };
    const expansion: Expansion = {
      ref,
      version: version.version,
      format,
      bytes,
      digest,
      contentDigest: contentDigestHeader(bytes),
      notModifiedHeaders,
      // Content-Length given up front spares the server a copy of the header object per response.
      headers: { ...notModifiedHeaders, 'Content-Digest': contentDigestHeader(bytes), 'Content-Type': 'application/json', 'Content-Length': String(bytes.length) },
    };
    this.cache.set(key, expansion);
    return expansion;
  }
}
