// The OpenAPI document as a contract: each answer is checked against the operation it documents, as a client
// generated from GET /openapi.json would read it (openapi-generator, openapi-python-client, oapi-codegen).

import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

interface MediaType {
  schema?: unknown;
}
interface Operation {
  operationId?: string;
  responses: Record<string, { content?: Record<string, MediaType> }>;
}
export interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
}

const DOC_ID = 'https://prefix-handles.invalid/openapi.json';
const CLOSED_ID = 'https://prefix-handles.invalid/closed.json';

/**
 * `#/components/schemas/X` → the same schema under $defs of one schema Ajv knows by `id`. `closed`: an object
 * schema that lists its properties and says nothing of others takes no others (unevaluatedProperties, so that
 * allOf/anyOf branches count): a field the server sends but the document does not name is one a generated client drops.
 */
function rebased(schema: unknown, id: string, closed: boolean): unknown {
  return JSON.parse(JSON.stringify(schema), (k, v) => {
    if (k === '$ref' && typeof v === 'string') return v.replace('#/components/schemas/', `${id}#/$defs/`);
    if (closed && v && typeof v === 'object' && !Array.isArray(v) && v.properties && typeof v.properties === 'object' && !('additionalProperties' in v) && !('unevaluatedProperties' in v))
      return { ...v, unevaluatedProperties: false };
    return v;
  });
}

const isJson = (type: string) => type === 'application/json' || type.endsWith('+json');

export class Contract {
  private readonly ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, strictTypes: false });
  private readonly validators = new Map<unknown, { open: ValidateFunction; closed: ValidateFunction }>();
  private readonly routes: Array<{ key: string; method: string; re: RegExp; literal: number; op: Operation }> = [];
  /** `METHOD /path/{template}` of every operation an answer was checked for. */
  readonly exercised = new Set<string>();
  /** `METHOD /path status` of every answer checked. */
  readonly answers = new Set<string>();

  constructor(readonly doc: OpenApiDoc) {
    addFormats(this.ajv);
    // OpenAPI's own keywords beside JSON Schema's: annotations only.
    this.ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs']);
    this.ajv.addSchema({ $id: DOC_ID, $defs: rebased(doc.components.schemas, DOC_ID, false) as Record<string, unknown> });
    this.ajv.addSchema({ $id: CLOSED_ID, $defs: rebased(doc.components.schemas, CLOSED_ID, true) as Record<string, unknown> });
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(item)) {
        const pattern = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+');
        this.routes.push({ key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), re: new RegExp(`^${pattern}$`), literal: path.replace(/\{[^}]+\}/g, '').length, op });
      }
  }

  /** Every operation of the document, as `METHOD /path`. */
  operations(): string[] {
    return this.routes.map((r) => r.key);
  }

  /** The documented operation a request reaches (the most literal template when several match). */
  operation(method: string, pathname: string) {
    const matches = this.routes.filter((r) => r.method === method && r.re.test(pathname)).sort((a, b) => b.literal - a.literal);
    if (!matches.length) throw new Error(`${method} ${pathname} is not in the document`);
    return matches[0]!;
  }

  /**
   * The mismatches between an answer and its operation in the document: the status is listed, the content type is
   * one documented for it, and a JSON body validates against the documented schema. Empty when it matches.
   */
  mismatches(method: string, url: string, status: number, contentType: string | null, text: string): string[] {
    const route = this.operation(method, new URL(url, 'http://x').pathname);
    this.exercised.add(route.key);
    this.answers.add(`${route.key} ${status}`);
    const at = `${route.key} → ${status}`;
    const listed = route.op.responses[String(status)] ?? route.op.responses[`${String(status)[0]}XX`];
    const response = listed ?? route.op.responses.default;
    if (!response) return [`${at}: status not documented (${Object.keys(route.op.responses).join(', ')}); body ${text.slice(0, 200)}`];
    const content = response.content ?? {};
    if (text === '') return Object.keys(content).length && status !== 304 ? [`${at}: empty body where ${Object.keys(content).join(', ')} is documented`] : [];
    const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    // `default` is for the 5xx and the provider's own answers: a refusal of ours is listed with its status.
    if (!listed && status < 500 && type === 'application/problem+json') return [`${at}: a problem this operation answers, listed only under default (${Object.keys(route.op.responses).join(', ')}); body ${text.slice(0, 200)}`];
    const media = content[type];
    if (!media) return [`${at}: content type ${type || '(none)'} not documented (${Object.keys(content).join(', ') || 'no body'}); body ${text.slice(0, 200)}`];
    if (!isJson(type) || media.schema === undefined) return [];
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return [`${at}: ${type} body is not JSON`];
    }
    let validate = this.validators.get(media.schema);
    if (!validate) {
      validate = { open: this.ajv.compile(rebased(media.schema, DOC_ID, false) as object), closed: this.ajv.compile(rebased(media.schema, CLOSED_ID, true) as object) };
      this.validators.set(media.schema, validate);
    }
    if (!validate.open(body)) return [`${at}: body does not match the schema: ${this.ajv.errorsText(validate.open.errors, { separator: '; ' })}; body ${text.slice(0, 300)}`];
    if (validate.closed(body)) return [];
    const fields = [...new Set(validate.closed.errors!.filter((e) => e.keyword === 'unevaluatedProperties').map((e) => `${e.instancePath}/${String(e.params.unevaluatedProperty)}`))];
    return [`${at}: fields the schema does not name: ${fields.join(', ') || this.ajv.errorsText(validate.closed.errors)}`];
  }

  /** Checks a Response (its body read from a clone): the same Response back, its body unread. */
  async check(method: string, url: string, res: Response, found: string[]): Promise<Response> {
    found.push(...this.mismatches(method, url, res.status, res.headers.get('content-type'), await res.clone().text()));
    return res;
  }
}
