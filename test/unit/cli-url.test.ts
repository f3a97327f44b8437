// The CLI's --url (or PH_URL) is the service's address: the API's /v1 or an SDK's proxy base URL given for it is a
// usage error naming the address, and any other path (a service behind a reverse proxy at a path of its own) is
// taken as it is.
import { afterEach, describe, expect, it } from 'vitest';
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

  describe('without --url or PH_URL', () => {
    const saved = { PORT: process.env.PORT, HOST: process.env.HOST, PH_URL: process.env.PH_URL };
    afterEach(() => {
      for (const [name, value] of Object.entries(saved)) if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    });
    const env = (vars: Record<string, string | undefined>) => {
      for (const [name, value] of Object.entries(vars)) if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    };

    it("is the service's own address from PORT and HOST, as the service reads them (a command run in its environment)", () => {
      // `docker exec … prefix-handles prune` in the service's environment called 127.0.0.1:8787, not its PORT.
      env({ PH_URL: undefined, PORT: '47731', HOST: undefined });
      expect(baseUrl(undefined)).toBe('http://127.0.0.1:47731');
      // A wildcard address the service listens on is reached on the loopback.
      env({ HOST: '0.0.0.0' });
      expect(baseUrl(undefined)).toBe('http://127.0.0.1:47731');
      env({ HOST: '::' });
      expect(baseUrl(undefined)).toBe('http://[::1]:47731');
      env({ HOST: 'ph.internal' });
      expect(baseUrl(undefined)).toBe('http://ph.internal:47731');
      // PH_URL and --url say where, whatever PORT is.
      env({ PH_URL: 'http://10.0.0.5:9000' });
      expect(baseUrl(undefined)).toBe('http://10.0.0.5:9000');
      expect(baseUrl('http://127.0.0.1:1234')).toBe('http://127.0.0.1:1234');
    });

    it('is http://127.0.0.1:8787 with neither set, or a PORT that names no port to call (0: any free one)', () => {
      env({ PH_URL: undefined, PORT: undefined, HOST: undefined });
      expect(baseUrl(undefined)).toBe('http://127.0.0.1:8787');
      env({ PORT: '0' });
      expect(baseUrl(undefined)).toBe('http://127.0.0.1:8787');
    });

    it('reads HOST only beside a PORT: a HOST alone (tcsh exports the machine name as HOST) is not the service', () => {
      env({ PH_URL: undefined, PORT: undefined, HOST: 'laptop.local' });
      expect(baseUrl(undefined)).toBe('http://127.0.0.1:8787');
      env({ PORT: '0' });
      expect(baseUrl(undefined)).toBe('http://127.0.0.1:8787');
    });
  });
});
