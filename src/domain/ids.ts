import { customAlphabet } from 'nanoid';

// One generator, one prefix table: an id says what it is.
export const ID_PREFIX = {
  artifact: 'art',
  bundle: 'bnd',
  session: 'ses',
  request: 'req',
  key: 'key',
  tenant: 'ten',
  /** A chain of a cache scope's snapshots (see scope-snapshot.ts). */
  snapshot: 'snp',
} as const;

export type IdKind = keyof typeof ID_PREFIX;
/** The handle types, as reports and lists name them (`type=`). */
export const HANDLE_TYPES = ['artifact', 'bundle', 'session'] as const;
export type HandleType = (typeof HANDLE_TYPES)[number];

// URL- and shell-safe (no '-' or '_', which would blur the prefix separator), 21 chars.
// The alphabet is in ASCII order, so ids sort as their digits do.
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const nano = customAlphabet(ALPHABET, 21);
const nanoTail = customAlphabet(ALPHABET, 13);

export function newId(kind: IdKind): string {
  return `${ID_PREFIX[kind]}_${nano()}`;
}

/**
 * A request id: 8 base-62 digits of the render time in ms (sortable until the
 * year 8900), then 13 random ones (77 bits). Requests rendered together sit
 * together in the id index, so recording and reconciling touch a few recent
 * index pages instead of one random page each.
 */
export function newRequestId(now: number): string {
  let t = Math.max(0, Math.floor(now));
  let digits = '';
  for (let i = 0; i < 8; i++, t = Math.floor(t / 62)) digits = ALPHABET[t % 62]! + digits;
  return `${ID_PREFIX.request}_${digits}${nanoTail()}`;
}

/** An id of one of `types` (all handle types by default): its prefix, then 21 characters, no version. */
export function handleIdPattern(types: HandleType[] = ['artifact', 'bundle', 'session']): RegExp {
  return new RegExp(`^(?:${types.map((t) => ID_PREFIX[t]).join('|')})_[0-9A-Za-z]{21}$`);
}

const HANDLE_ID = handleIdPattern();
const REF = /^((?:art|bnd|ses)_[0-9A-Za-z]{21})(?:@([1-9][0-9]{0,8}))?$/;

export function isHandleId(value: string): boolean {
  return HANDLE_ID.test(value);
}

export function handleTypeOf(id: string): HandleType {
  if (id.startsWith('art_')) return 'artifact';
  if (id.startsWith('bnd_')) return 'bundle';
  return 'session';
}

export interface Ref {
  id: string;
  /** null = latest */
  version: number | null;
}

/** Parses `id` or `id@version`; null when the text is not a ref. */
export function parseRef(text: string): Ref | null {
  const m = REF.exec(text);
  if (!m) return null;
  return { id: m[1]!, version: m[2] ? Number(m[2]) : null };
}

export function formatRef(id: string, version: number): string {
  return `${id}@${version}`;
}
