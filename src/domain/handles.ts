import type { BlobInput, HandleRow, NewVersion, PinInput, Store, VersionRow } from '../store/store';
import { canonicalJson, findInvalidJson, hasLoneSurrogate } from './canonical-json';
import type { Clock } from './clock';
import {
  contentSchemaByKind,
  isJsonKind,
  messageListSchema,
  toolPairingProblem,
  toolUseIds,
  type ArtifactKind,
  type Message,
  type ToolDefinition,
} from './content';
import { createHash, type Hash } from 'node:crypto';
import { sha256Hex } from './digest';
import { DomainError, invalid, notFound, tenantDeleted, withPointer } from './errors';
import { formatRef, handleTypeOf, newId, parseRef, type HandleType } from './ids';
import { Lru } from './lru';
import { semanticKey } from './simulator/semantic';
import { addTokens, onTokensBasis, segmentTextTokens, type HandleMeter, type Tokens } from './handle-meta';
import { validationError } from './validation';
import { estimatedTool, estimatedToolWarning } from './estimated-tools';
import type { RenderWarning } from './requests';
import { orderSegments, type PromptSegment } from './render/prompt';
import { countedSegmentItems, learnToolNames, newRenderContext, renderExpansion } from './render/formats';
import { firstDifferingByte } from './reuse-metadata';

export interface ResolvedVersion {
  handle: HandleRow;
  version: VersionRow;
  ref: string;
}

export interface HandleServiceOptions {
  store: Store;
  clock: Clock;
  /** Computes reuse metadata at mint; without it versions carry none. */
  meter?: HandleMeter;
  /** Tenants being deleted (TenantDeletion): a write of theirs still under way is refused. */
  deleted?: (tenantId: string) => boolean;
}

const MAX_BUNDLE_DEPTH = 32;

interface Previous {
  segments: PromptSegment[];
  text: string;
}

/**
 * A session version's neutral text as the next append extends it: the sha256 state over all of it but its closing
 * `]}` (the list of messages is its last member), its length in bytes, and whether that list is still empty.
 */
interface SessionText {
  version: number;
  hash: Hash;
  bytes: number;
  empty: boolean;
}

/**
 * Mint, version, append, resolve and flatten handles. Every write is one
 * store call (one synchronous transaction); everything before it is pure.
 */
export class HandleService {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly meter: HandleMeter | undefined;
  private readonly deleted: (tenantId: string) => boolean;
  // Versions are immutable, so their flattened segments never go stale.
  private readonly segmentCache = new Lru<string, PromptSegment[]>(20_000);
  // Resolved refs, so a hot expand touches no SQL. Writes through this service invalidate them;
  // a second process writing the same database is not seen (one SQLite file, one instance).
  private readonly resolved = new Lru<string, ResolvedVersion>(50_000);
  private readonly depths = new Lru<string, number>(50_000);
  // Text-basis token counts of segments stored on the JSON basis, by source, and of such versions, by ref.
  private readonly textCounts = new Lru<string, Tokens>(20_000);
  private readonly versionTextTokens = new Lru<string, Tokens>(10_000);
  // Per session, its latest version's text as an append extends it: a turn serialises and hashes its own batch, not
  // the whole history again (a session of hundreds of turns and megabytes).
  private readonly sessionTexts = new Lru<string, SessionText>(10_000);

  constructor(opts: HandleServiceOptions) {
    this.store = opts.store;
    this.clock = opts.clock;
    this.meter = opts.meter;
    this.deleted = opts.deleted ?? (() => false);
  }

  /** A tenant deleted while its call was under way writes nothing more (its rows are being deleted). */
  private writable(tenantId: string): void {
    if (this.deleted(tenantId)) throw tenantDeleted();
  }

  private insertHandle(handle: HandleRow, first: NewVersion): void {
    this.writable(handle.tenantId);
    this.store.insertHandle(handle, first);
  }

  /** After a tenant's deletion: nothing of it stays in memory (versions are immutable, so nothing else is ever stale). */
  forgetCaches(): void {
    for (const cache of [this.segmentCache, this.resolved, this.depths, this.textCounts, this.versionTextTokens]) cache.clear();
  }

  // ---------- artifacts ----------

  mintArtifact(tenantId: string, input: { kind: ArtifactKind; content: unknown; name?: string; metadata?: unknown }) {
    const bytes = encodeArtifact(input.kind, input.content, '/content');
    const id = newId('artifact');
    const now = this.clock.now();
    const version = this.artifactVersion(id, 1, bytes, undefined, now, input.kind);
    this.insertHandle(
      {
        id,
        tenantId,
        type: 'artifact',
        kind: input.kind,
        name: input.name ?? null,
        metadata: keptMetadata(input.metadata),
        latestVersion: 1,
        createdAt: now,
        deletedAt: null,
      },
      version,
    );
    return { created: true, handle: this.mustGetHandle(tenantId, id), version: version.version, warnings: this.toolWarnings(input.kind, input.content) };
  }

  /** A tools artifact's Anthropic-defined tools no catalog model has a token figure for: minted, and warned of. */
  private toolWarnings(kind: ArtifactKind, content: unknown): RenderWarning[] {
    if (kind !== 'tools' || !this.meter || !Array.isArray(content)) return [];
    const meter = this.meter;
    return content.flatMap((t) => estimatedTool(t, (type) => meter.hasToolFigure(type), null) ?? []).map((t) => estimatedToolWarning(t, null));
  }

  newArtifactVersion(tenantId: string, id: string, content: unknown) {
    const handle = this.liveHandle(tenantId, id, 'artifact');
    const bytes = encodeArtifact(handle.kind as ArtifactKind, content, '/content');
    const latest = this.mustGetVersion(handle.id, handle.latestVersion);
    // Same bytes as the latest version: return it, don't mint a duplicate.
    const warnings = this.toolWarnings(handle.kind as ArtifactKind, content);
    if (latest.contentDigest === sha256Hex(bytes)) return { created: false, handle, version: latest, warnings };
    const previous = this.store.getBlob(latest.contentDigest!)!;
    const next = this.artifactVersion(id, latest.version + 1, bytes, previous.toString('utf8'), this.clock.now(), handle.kind as ArtifactKind);
    this.commitAppend(handle, latest.version, next);
    return { created: true, handle: this.mustGetHandle(tenantId, id), version: next.version, warnings };
  }

  private artifactVersion(id: string, version: number, bytes: Buffer, previousText: string | undefined, now: number, kind: ArtifactKind): NewVersion {
    const digest = sha256Hex(bytes);
    return {
      version: {
        handleId: id,
        version,
        createdAt: now,
        digest,
        size: bytes.length,
        contentDigest: digest,
        members: null,
        base: null,
        messageCount: null,
        meta: this.meter?.artifact(kind, bytes.toString('utf8'), previousText) ?? null,
      },
      blobs: [{ digest, bytes }],
      pins: [],
    };
  }

  // ---------- bundles ----------

  createBundle(tenantId: string, input: { members: string[]; name?: string; metadata?: unknown }) {
    const id = newId('bundle');
    const now = this.clock.now();
    const next = this.bundleVersion(tenantId, id, 1, input.members, undefined, now);
    this.insertHandle(
      { id, tenantId, type: 'bundle', kind: null, name: input.name ?? null, metadata: keptMetadata(input.metadata), latestVersion: 1, createdAt: now, deletedAt: null },
      next,
    );
    return { created: true, handle: this.mustGetHandle(tenantId, id), version: next.version };
  }

  newBundleVersion(tenantId: string, id: string, members: string[]) {
    const handle = this.liveHandle(tenantId, id, 'bundle');
    const latest = this.mustGetVersion(id, handle.latestVersion);
    const next = this.bundleVersion(tenantId, id, latest.version + 1, members, this.previousOf(handle, latest.version), this.clock.now());
    if (next.version.digest === latest.digest && sameList(next.version.members, latest.members))
      return { created: false, handle, version: latest };
    this.commitAppend(handle, latest.version, next);
    return { created: true, handle: this.mustGetHandle(tenantId, id), version: next.version };
  }

  private bundleVersion(tenantId: string, id: string, version: number, memberRefs: string[], previous: Previous | undefined, now: number): NewVersion {
    const pinned = memberRefs.map((text, i) => {
      const r = this.resolve(tenantId, text, `/members/${i}`);
      if (r.handle.type === 'session') throw invalid(`/members/${i}`, `${text} is a session; bundles hold artifacts and bundles`);
      if (r.handle.id === id) throw invalid(`/members/${i}`, 'a bundle cannot contain itself');
      if (this.depthOf(r.handle, r.version) >= MAX_BUNDLE_DEPTH) throw invalid(`/members/${i}`, `bundles nest at most ${MAX_BUNDLE_DEPTH} deep`);
      return r;
    });
    const perMember = pinned.map((r) => this.segmentsOf(r.handle, r.version.version));
    // As a member named twice (schemas.ts), content reached through two members would be sent twice.
    const firstMember = new Map<string, number>();
    perMember.forEach((segs, i) => {
      for (const s of segs) {
        const at = firstMember.get(s.source);
        if (at !== undefined && at !== i) throw invalid(`/members/${i}`, `${s.source} is also inside member ${at}: its content would be sent twice`);
        firstMember.set(s.source, i);
      }
    });
    const segments = orderSegments(perMember.flatMap((segs) => segs.map((s) => ({ ...s, path: [formatRef(id, version), ...s.path] }))));
    const text = renderExpansion('neutral', segments);
    const bytes = Buffer.from(text, 'utf8');
    return {
      version: {
        handleId: id,
        version,
        createdAt: now,
        digest: sha256Hex(bytes),
        size: bytes.length,
        contentDigest: null,
        members: pinned.map((r) => r.ref),
        base: null,
        messageCount: null,
        meta: this.compositeMeta(segments, bytes.length, previous && { segments: previous.segments, firstDiffByte: firstDifferingByte(bytes, Buffer.from(previous.text)) }, undefined),
      },
      blobs: [],
      pins: pinned.map((r) => ({ toId: r.handle.id, toVersion: r.version.version })),
    };
  }

  // ---------- sessions ----------

  createSession(tenantId: string, input: { base?: string; messages?: unknown; name?: string; metadata?: unknown }) {
    const id = newId('session');
    const now = this.clock.now();
    let base: ResolvedVersion | undefined;
    if (input.base !== undefined) {
      base = this.resolve(tenantId, input.base, '/base');
      if (base.handle.type !== 'bundle') throw invalid('/base', `${input.base} is not a bundle`);
    }
    const messages = input.messages === undefined ? [] : parseMessages(input.messages, '/messages');
    const baseSegments = base
      ? this.segmentsOf(base.handle, base.version.version).map((s) => ({ ...s, path: [formatRef(id, 1), ...s.path] }))
      : [];
    assertToolPairing(lastMessage(baseSegments), messages, '/messages');
    const { next, text } = this.sessionVersion(id, 1, baseSegments, messages, 0, base?.ref ?? null, undefined, now);
    if (base) next.pins.push({ toId: base.handle.id, toVersion: base.version.version });
    this.insertHandle(
      { id, tenantId, type: 'session', kind: null, name: input.name ?? null, metadata: keptMetadata(input.metadata), latestVersion: 1, createdAt: now, deletedAt: null },
      next,
    );
    this.sessionTexts.set(id, text);
    return { created: true, handle: this.mustGetHandle(tenantId, id), version: next.version };
  }

  /**
   * Appends one batch of messages as the next version. With `ifMatch` the
   * append applies only on that version; without it, on whatever is latest.
   */
  appendMessages(tenantId: string, id: string, rawMessages: unknown, ifMatch?: number) {
    const messages = parseMessages(rawMessages, '/messages');
    if (messages.length === 0) throw invalid('/messages', 'append at least one message');
    for (let attempt = 0; ; attempt++) {
      const handle = this.liveHandle(tenantId, id, 'session');
      if (ifMatch !== undefined && ifMatch !== handle.latestVersion)
        throw versionConflict(id, handle.latestVersion, ifMatch, IF_MATCH);
      const latest = this.mustGetVersion(id, handle.latestVersion);
      const previous = this.segmentsOf(handle, latest.version);
      assertToolPairing(lastMessage(previous), messages, '/messages');
      const { next, text } = this.sessionVersion(id, latest.version + 1, previous, messages, latest.messageCount ?? 0, latest.base, handle, this.clock.now(), textBasisTokens(latest, hasTools(previous)));
      this.writable(tenantId);
      const result = this.store.appendVersion(id, latest.version, next);
      this.invalidate();
      // Only a version stored is extended: another writer's would have other text.
      if (result.ok) this.sessionTexts.set(id, text);
      if (result.ok) return { created: true, handle: this.mustGetHandle(tenantId, id), version: next.version };
      // Another writer appended first: with If-Match that is a conflict, otherwise retry on the new latest.
      if (ifMatch !== undefined || attempt >= 5) throw versionConflict(id, result.latestVersion, ifMatch ?? latest.version, ifMatch !== undefined ? IF_MATCH : undefined);
    }
  }

  /**
   * Refuses a turn the session could not take after it: tool calls that do not pair with its last message (the
   * provider would refuse the request too). `exact`: the turn's messages are the body's, one for one, so the
   * pointer can name the block; otherwise it names the list.
   */
  /**
   * `exact`: the turn's messages are the body's (Anthropic's), their pointers too; else `placeOf` gives a message's place
   * in the body, where the turn was read from another shape (a refusal points there, else at `pointer`).
   */
  checkTurn(tenantId: string, sessionId: string, version: number, messages: Message[], pointer: string, exact: boolean, placeOf?: (message: number) => string | undefined): void {
    const handle = this.liveHandle(tenantId, sessionId, 'session');
    const segments = this.segmentsOf(handle, version);
    // A client that sends its history again (the whole conversation, or the last reply before a tool output, as the
    // Responses API's examples do) would have it twice: in the session and in the turn.
    const repeated = repeatedTail(segments.flatMap((s) => (s.section === 'messages' ? s.messages : [])), messages);
    if (repeated > 0)
      throw invalid(pointer, `this turn starts with the session's last ${repeated === 1 ? 'message' : `${repeated} messages`} again: the session sends its history itself, so send only the new messages (to continue its last reply, send none: the session already ends with it)`);
    // The provider's reply comes after the turn: a call in the turn's last message could never be answered.
    const open = messages.length ? toolUseIds(messages[messages.length - 1]) : [];
    const problem =
      toolPairingProblem(lastMessage(segments), messages, pointer) ??
      (open.length ? { pointer: `${pointer}/${messages.length - 1}`, detail: `ends the turn with the tool_use "${open[0]}": the reply comes next and cannot answer it` } : null);
    if (!problem) return;
    const index = Number(problem.pointer.slice(pointer.length + 1).split('/')[0]);
    // The pointer names the message in the body as sent; the index counts the list as kept (system messages left out,
    // tool outputs joined), so it is said only where no place in the body is known.
    const place = exact ? problem.pointer : placeOf?.(index);
    throw invalid(place ?? pointer, place !== undefined ? problem.detail : `${problem.detail} (message ${index} of this turn as kept)`);
  }

  private sessionVersion(
    id: string,
    version: number,
    previousSegments: PromptSegment[],
    batch: Message[],
    previousCount: number,
    base: string | null,
    /** The session, when this version follows one of its own. */
    handle: HandleRow | undefined,
    now: number,
    previousTokens?: Tokens,
  ): { next: NewVersion; text: SessionText } {
    const batchText = canonicalJson(batch, '/messages');
    const batchBytes = Buffer.from(batchText, 'utf8');
    const batchDigest = sha256Hex(batchBytes);
    const batchMeta = batch.length && this.meter ? this.meter.batch(batch, batchText, toolNamesOf(previousSegments)) : undefined;
    const own: PromptSegment | undefined = batch.length
      ? {
          section: 'messages',
          source: formatRef(id, version),
          path: [formatRef(id, version)],
          messages: batch,
          ...(batchMeta ? { tokens: batchMeta.tokens, textTokens: true, volatility: batchMeta.volatility.count } : {}),
        }
      : undefined;
    const segments = own ? [...previousSegments, own] : previousSegments;
    const { text, firstDiffByte } = this.sessionText(id, version, segments, own, handle);
    const next: NewVersion = {
      version: {
        handleId: id,
        version,
        createdAt: now,
        digest: text.hash.copy().update(']}').digest('hex'),
        size: text.bytes,
        contentDigest: batchDigest,
        members: null,
        base,
        messageCount: previousCount + batch.length,
        // On a previous version counted on the text basis, one batch is added; else the session is counted whole, once.
        meta: this.meter
          ? { ...this.compositeMeta(segments, text.bytes, handle && { segments: previousSegments, firstDiffByte }, previousTokens && (batchMeta ? addTokens(previousTokens, batchMeta.tokens) : previousTokens)), ...(batchMeta ? { batch: batchMeta } : {}) }
          : null,
      },
      blobs: [{ digest: batchDigest, bytes: batchBytes }],
      pins: [] as PinInput[],
    };
    return { next, text };
  }

  /**
   * A session version's neutral text (its digest and size) and where it first differs from the version before. After
   * a version this process wrote, the text is that one's with `own`, the new batch, added to its list of messages:
   * only the batch is serialised and hashed. Otherwise (the first append after a restart, after another process's
   * version, or once the session left the 10,000 kept) it is rendered whole, and so is the version before it, for the
   * first differing byte.
   */
  private sessionText(id: string, version: number, segments: PromptSegment[], own: PromptSegment | undefined, handle: HandleRow | undefined): { text: SessionText; firstDiffByte: number | null } {
    const before = this.sessionTexts.get(id);
    if (before && before.version === version - 1) {
      if (!own) return { text: { ...before, version }, firstDiffByte: null };
      const added = `${before.empty ? '' : ','}${countedSegmentItems('neutral', own, newRenderContext()).join(',')}`;
      // The first byte that differs is the list's closing `]`, where the new batch (or its comma) now stands.
      return { text: { version, hash: before.hash.copy().update(added), bytes: before.bytes + Buffer.byteLength(added), empty: false }, firstDiffByte: before.bytes - 2 };
    }
    const whole = renderExpansion('neutral', segments);
    const bytes = Buffer.from(whole, 'utf8');
    const previous = handle && this.previousOf(handle, version - 1);
    return {
      text: { version, hash: createHash('sha256').update(whole.slice(0, -2)), bytes: bytes.length, empty: whole.endsWith('[]}') },
      firstDiffByte: previous ? firstDifferingByte(bytes, Buffer.from(previous.text)) : null,
    };
  }

  /** A bundle's or session's meta; `total`: its tokens when known without counting every segment. */
  private compositeMeta(segments: PromptSegment[], bytes: number, previous: { segments: PromptSegment[]; firstDiffByte: number | null } | undefined, total: Tokens | undefined) {
    if (!this.meter) return null;
    let counts: Tokens[] | undefined;
    const countsOf = () => (counts ??= this.segmentTextTokens(segments));
    return this.meter.composite(segments, bytes, previous, total ?? countsOf().reduce(addTokens, zeroTokens()), (i) => countsOf()[i]!);
  }

  /**
   * Each segment's tokens on the text basis: as stored when they are, else counted now (once per process). A session
   * batch follows the tool calls before it; an artifact is counted on its own, as at its mint.
   */
  private segmentTextTokens(segments: PromptSegment[]): Tokens[] {
    const ctx = newRenderContext();
    return segments.map((s) => {
      let tokens: Tokens | undefined = s.textTokens ? s.tokens : this.textCounts.get(s.source);
      if (!tokens) {
        tokens = segmentTextTokens(s, s.source.startsWith('ses_') ? ctx.toolNames : new Map());
        this.textCounts.set(s.source, tokens);
      }
      learnToolNames(s, ctx);
      return tokens;
    });
  }

  /**
   * A version's tokens on the text basis (see TOKENS_BASIS): its meta's when they are, else counted on demand and kept
   * for the process (versions are immutable); undefined without meta.
   */
  textTokens(handle: HandleRow, version: VersionRow): Tokens | undefined {
    const meta = version.meta as { tokens?: Tokens } | null;
    if (!meta?.tokens || !this.meter) return meta?.tokens;
    const stored = textBasisTokens(version, true) ?? (handle.kind === 'system' || handle.kind === 'document' ? meta.tokens : undefined);
    if (stored) return stored;
    const key = formatRef(handle.id, version.version);
    let tokens = this.versionTextTokens.get(key);
    if (!tokens) {
      const segments = this.segmentsOf(handle, version.version);
      tokens = textBasisTokens(version, hasTools(segments)) ?? this.segmentTextTokens(segments).reduce(addTokens, zeroTokens());
      this.versionTextTokens.set(key, tokens);
    }
    return tokens;
  }

  // ---------- reading ----------

  /** Resolves `id` or `id@version` for a tenant. Foreign and missing handles are the same 404. */
  resolve(tenantId: string, refText: string, pointer = 'path:ref'): ResolvedVersion {
    const hit = this.resolved.get(refText);
    if (hit && hit.handle.tenantId === tenantId) return hit;
    const ref = parseRef(refText);
    if (!ref) throw invalid(pointer, `"${refText}" is not a handle ref (art_, bnd_ or ses_ and 21 letters or digits, optionally @version)`);
    const handle = this.store.getHandle(ref.id);
    if (!handle || handle.tenantId !== tenantId) throw withPointer(notFound(`handle ${ref.id}`), pointer);
    if (handle.deletedAt !== null) throw withPointer(new DomainError('gone', `handle ${ref.id} was deleted`), pointer);
    const v = ref.version ?? handle.latestVersion;
    const version = this.store.getVersion(handle.id, v);
    if (!version) throw withPointer(notFound(`version ${v} of ${ref.id}`), pointer);
    const resolved = { handle, version, ref: formatRef(handle.id, v) };
    this.resolved.set(refText, resolved);
    return resolved;
  }

  /**
   * The tenant's live artifact versions whose content is exactly `content` as a mint of the kind would store it (its
   * digest, which the store keeps), oldest first; none when it is not content of that kind.
   */
  withContent(tenantId: string, kind: 'system' | 'tools', content: unknown): ResolvedVersion[] {
    let bytes: Buffer;
    try {
      bytes = encodeArtifact(kind, content, '/content');
    } catch (err) {
      if (err instanceof DomainError) return [];
      throw err;
    }
    return this.store.artifactVersionsWithContent(tenantId, kind, sha256Hex(bytes)).map((v) => this.resolve(tenantId, formatRef(v.handleId, v.version)));
  }

  /** After any write to a handle, every cached ref of it is stale (its row's latest version changed). */
  private invalidate(): void {
    this.resolved.clear();
  }

  getHandle(tenantId: string, id: string): HandleRow {
    const handle = this.store.getHandle(id);
    if (!handle || handle.tenantId !== tenantId) throw notFound(`handle ${id}`);
    if (handle.deletedAt !== null) throw new DomainError('gone', `handle ${id} was deleted`);
    return handle;
  }

  /** Oldest first; with `newest`, only the newest N (a long session has one version per turn), up to `through` if given. */
  versions(handleId: string, newest?: number, through?: number): VersionRow[] {
    return through === undefined ? this.store.listVersions(handleId, newest) : this.store.listVersions(handleId, newest, through);
  }

  list(tenantId: string, q: { type?: HandleType; kind?: ArtifactKind; cursor?: string; limit: number }) {
    const rows = this.store.listHandles({ tenantId, type: q.type, kind: q.kind, after: q.cursor, limit: q.limit + 1 });
    const page = rows.slice(0, q.limit);
    return { handles: page, next_cursor: rows.length > q.limit ? page[page.length - 1]!.id : null };
  }

  delete(tenantId: string, id: string): void {
    const handle = this.getHandle(tenantId, id);
    this.writable(tenantId);
    const result = this.store.deleteHandle(handle.id, this.clock.now());
    this.invalidate();
    if (!result.ok)
      throw new DomainError('handle_in_use', `${id} is still pinned by ${result.referrers.join(', ')}`, { referrers: result.referrers });
  }

  /** Nesting depth of a pinned version: 0 for an artifact, 1 + the deepest member for a bundle. */
  private depthOf(handle: HandleRow, version: VersionRow): number {
    if (handle.type !== 'bundle') return 0;
    const key = formatRef(handle.id, version.version);
    const known = this.depths.get(key);
    if (known !== undefined) return known;
    let depth = 1;
    for (const m of version.members ?? []) {
      const ref = parseRef(m)!;
      depth = Math.max(depth, 1 + this.depthOf(this.store.getHandle(ref.id)!, this.mustGetVersion(ref.id, ref.version!)));
    }
    this.depths.set(key, depth);
    return depth;
  }

  /** The prompt segments of one immutable handle version, in render order. */
  segmentsOf(handle: HandleRow, version: number): PromptSegment[] {
    return this.flatten(handle, version, 0);
  }

  private flatten(handle: HandleRow, version: number, depth: number): PromptSegment[] {
    const key = formatRef(handle.id, version);
    const cached = this.segmentCache.get(key);
    if (cached) return cached;
    if (depth > MAX_BUNDLE_DEPTH) throw invalid('/members', `bundles nest deeper than ${MAX_BUNDLE_DEPTH}`);
    const row = this.mustGetVersion(handle.id, version);
    let segments: PromptSegment[];
    if (handle.type === 'artifact') segments = [this.artifactSegment(handle.kind as ArtifactKind, key, row)];
    else if (handle.type === 'bundle') {
      segments = orderSegments(
        (row.members ?? []).flatMap((m) => {
          const ref = parseRef(m)!;
          const member = this.store.getHandle(ref.id)!;
          return this.flatten(member, ref.version!, depth + 1).map((s) => ({ ...s, path: [key, ...s.path] }));
        }),
      );
    } else segments = this.sessionSegments(handle, row, depth);
    this.segmentCache.set(key, segments);
    return segments;
  }

  private sessionSegments(handle: HandleRow, row: VersionRow, depth: number): PromptSegment[] {
    const key = formatRef(handle.id, row.version);
    // With the version before at hand (an append flattens the latest version, which the append before it built on),
    // this one is that plus its own batch: one batch read, not every earlier one (a session of thousands of turns).
    const before = row.version > 1 ? this.segmentCache.get(formatRef(handle.id, row.version - 1)) : undefined;
    if (before) {
      // The base's segments carry this version's ref first on their path; a batch's path is its own ref alone.
      const carried = before.map((s) => (s.path.length > 1 ? { ...s, path: [key, ...s.path.slice(1)] } : s));
      const own = this.batchSegment(handle.id, row);
      return own ? [...carried, own] : carried;
    }
    const base = this.baseSegments(handle, row, depth);
    const batches: PromptSegment[] = [];
    for (const v of this.store.listVersions(handle.id)) {
      if (v.version > row.version) break;
      const batch = this.batchSegment(handle.id, v);
      if (batch) batches.push(batch);
    }
    return [...base, ...batches];
  }

  /**
   * The segments a session version's base bundle puts before its messages (none without a base), without reading
   * its batches: a long session's page lists its base and only some of its thousands of batches.
   */
  sessionBase(handle: HandleRow, row: VersionRow): PromptSegment[] {
    return this.baseSegments(handle, row, 0);
  }

  private baseSegments(handle: HandleRow, row: VersionRow, depth: number): PromptSegment[] {
    if (!row.base) return [];
    const key = formatRef(handle.id, row.version);
    const ref = parseRef(row.base)!;
    return this.flatten(this.store.getHandle(ref.id)!, ref.version!, depth + 1).map((s) => ({ ...s, path: [key, ...s.path] }));
  }

  /** The messages one session version appended, as a segment (none for a session started without messages). */
  private batchSegment(id: string, v: VersionRow): PromptSegment | undefined {
    const messages = JSON.parse(this.store.getBlob(v.contentDigest!)!.toString('utf8')) as Message[];
    if (!messages.length) return undefined;
    const batch = (v.meta as { batch?: { tokens: PromptSegment['tokens']; volatility: { count: number } } } | null)?.batch;
    return {
      section: 'messages',
      source: formatRef(id, v.version),
      path: [formatRef(id, v.version)],
      messages,
      ...(batch ? { tokens: batch.tokens, ...(textBasisTokens(v, false) ? { textTokens: true } : {}), volatility: batch.volatility.count } : {}),
    };
  }

  private artifactSegment(kind: ArtifactKind, key: string, row: VersionRow): PromptSegment {
    const text = this.store.getBlob(row.contentDigest!)!.toString('utf8');
    const meta = row.meta as { tokens?: PromptSegment['tokens']; volatility?: { count: number } } | null;
    // A system prompt's or document's count is its text, on either basis.
    const textBasis = kind === 'system' || kind === 'document' || textBasisTokens(row, kind === 'tools') !== undefined;
    const base = { source: key, path: [key], ...(meta?.tokens ? { tokens: meta.tokens, ...(textBasis ? { textTokens: true } : {}), volatility: meta.volatility?.count ?? 0 } : {}) };
    if (kind === 'system') return { ...base, section: 'system', text };
    if (kind === 'document') return { ...base, section: 'messages', messages: [{ role: 'user', content: [{ type: 'text', text }] }] };
    if (kind === 'tools') return { ...base, section: 'tools', tools: JSON.parse(text) as ToolDefinition[] };
    return { ...base, section: 'messages', messages: JSON.parse(text) as Message[] };
  }

  private previousOf(handle: HandleRow, version: number): Previous | undefined {
    if (!this.meter) return undefined;
    const segments = this.segmentsOf(handle, version);
    return { segments, text: renderExpansion('neutral', segments) };
  }

  private liveHandle(tenantId: string, id: string, type: HandleType): HandleRow {
    const handle = this.getHandle(tenantId, id);
    if (handle.type !== type || handleTypeOf(id) !== type) throw notFound(`${type} ${id}`);
    return handle;
  }

  private mustGetHandle(tenantId: string, id: string): HandleRow {
    return this.getHandle(tenantId, id);
  }

  private mustGetVersion(id: string, version: number): VersionRow {
    const row = this.store.getVersion(id, version);
    if (!row) throw notFound(`version ${version} of ${id}`);
    return row;
  }

  private commitAppend(handle: HandleRow, expected: number, next: NewVersion): void {
    this.writable(handle.tenantId);
    const result = this.store.appendVersion(handle.id, expected, next);
    this.invalidate();
    if (!result.ok) throw versionConflict(handle.id, result.latestVersion, expected);
  }
}

const zeroTokens = (): Tokens => ({ o200k_base: 0, cl100k_base: 0, anthropic: 0, gemini: 0 });

/** A version's meta tokens when counted on the current basis (handle-meta.ts TOKENS_BASIS); `hasTools`: its content has tools. */
function textBasisTokens(v: VersionRow, hasTools: boolean): Tokens | undefined {
  const meta = v.meta as { tokens?: Tokens; tokens_basis?: string } | null;
  return onTokensBasis(meta?.tokens_basis, hasTools) ? meta?.tokens : undefined;
}

const hasTools = (segments: PromptSegment[]) => segments.some((s) => s.section === 'tools');

/** The tool calls a session's segments make, by id (Gemini answers them by name). */
function toolNamesOf(segments: PromptSegment[]): Map<string, string> {
  const ctx = newRenderContext();
  for (const s of segments) learnToolNames(s, ctx);
  return ctx.toolNames;
}

/** Validates artifact content for its kind and returns the bytes to store. */
export function encodeArtifact(kind: ArtifactKind, content: unknown, pointer: string): Buffer {
  const parsed = contentSchemaByKind[kind].safeParse(content);
  if (!parsed.success) throw validationError(parsed.error, pointer, `content is not valid ${kind} content`);
  if (kind === 'messages') {
    // Inside one artifact: a result at its very start may answer a call placed before it.
    assertToolPairing(undefined, parsed.data as Message[], pointer, false);
  }
  if (isJsonKind(kind)) return Buffer.from(canonicalJson(parsed.data, pointer), 'utf8');
  const text = parsed.data as string;
  // Text is stored byte-exact; a lone surrogate has no UTF-8 encoding, so refuse rather than repair.
  if (hasLoneSurrogate(text)) throw invalid(pointer, 'text contains a lone UTF-16 surrogate (not valid Unicode)');
  return Buffer.from(text, 'utf8');
}

/**
 * How many messages at the start of `turn` are the session's last ones again (0: none). Only a repeat that holds
 * a reply counts: the proxy appends the replies itself, so a turn never rightly starts with one, where a user may
 * well say the same thing twice.
 */
function repeatedTail(history: Message[], turn: Message[]): number {
  const n = Math.min(history.length, turn.length);
  if (n === 0) return 0;
  // Compared as the prompt they make ("hi" and [{type: "text", text: "hi"}] are one message), each keyed once: the
  // candidates below compare the same messages again and again.
  const key = (m: Message) => semanticKey('anthropic', m);
  const turnKeys = turn.slice(0, n).map(key);
  const tail = history.slice(history.length - n);
  const tailKeys = tail.map(key);
  for (let k = n; k >= 1; k--) {
    // The turn's first k messages against the history's last k.
    if (turnKeys[k - 1] !== tailKeys[n - 1]) continue;
    const from = n - k;
    if (tail.slice(from).some((m) => m.role === 'assistant') && turnKeys.slice(0, k).every((t, i) => t === tailKeys[from + i])) return k;
  }
  return 0;
}

/** The last message a session's (or its base's) expansion ends with, if any. */
function lastMessage(segments: PromptSegment[]): Message | undefined {
  const last = segments.findLast((s) => s.section === 'messages');
  return last?.section === 'messages' ? last.messages[last.messages.length - 1] : undefined;
}

function assertToolPairing(before: Message | undefined, messages: Message[], pointer: string, checkStart = true): void {
  const problem = toolPairingProblem(before, messages, pointer, checkStart);
  if (problem) throw invalid(problem.pointer, problem.detail);
}

function parseMessages(raw: unknown, pointer: string): Message[] {
  const parsed = messageListSchema.safeParse(raw);
  if (!parsed.success) throw validationError(parsed.error, pointer, 'messages are not valid');
  canonicalJson(parsed.data, pointer);
  return parsed.data;
}

/** Free-form metadata is kept as it came, so what JSON cannot carry faithfully (1e309, a lone surrogate) is refused. */
function keptMetadata(metadata: unknown): unknown {
  if (metadata === undefined || metadata === null) return null;
  const bad = findInvalidJson(metadata, '/metadata');
  if (bad !== null) throw invalid(bad.pointer, bad.detail);
  return metadata;
}

/** Where a version a caller expected comes from (the append route's header). */
const IF_MATCH = 'header:if-match';

function versionConflict(id: string, current: number, expected: number, pointer?: string): DomainError {
  const message = `${id} is at version ${current}, not ${expected}`;
  return new DomainError('version_conflict', message, { current_version: current }, pointer ? [{ pointer, detail: `expected version ${expected}; the latest is ${current}` }] : []);
}

function sameList(a: string[] | null, b: string[] | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export type { BlobInput };
