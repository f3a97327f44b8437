// The CLI's --url (or PH_URL) is the service's address: the API's /v1 or an SDK's proxy base URL given for it is a
// usage error naming the address, and any other path (a service behind a reverse proxy at a path of its own) is
// taken as it is.
import { describe, expect, it } from 'vitest';
import { baseUrl, UsageError } from '../../src/cli/command';

describe('baseUrl', () => {
  it("refuses the API's /v1 and the proxy's base URLs, naming the address to use", () => {
    for (const [given, use] of [
      ['http://127.0.0.1:8787/v1/', 'http://127.0.0.1:8787'],
      ['http://127.0.0.1:8787/proxy/openai/v1', 'http://127.0.0.1:8787'],
      ['http://127.0.0.1:8787/proxy/anthropic', 'http://127.0.0.1:8787'],
      ['https://gw.example/ph/proxy', 'https://gw.example/ph'],
    ]) {
      expect(() => baseUrl(given), given).toThrow(UsageError);
      expect(() => baseUrl(given), given).toThrow(`use ${JSON.stringify(use)}`);
    }
  });

  it('takes a service mounted at a path of its own, also one with "proxy" in it', () => {
    for (const url of ['https://tools.example/proxy/prefix-handles', 'https://tools.example/proxy-ph', 'https://tools.example/ph/proxy/v2']) expect(baseUrl(url)).toBe(url);
  });
});
