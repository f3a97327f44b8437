import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';
import { exportSettings, exportTarget } from '../../src/otlp';
import { bootstrapDefaultKey } from '../../src/bootstrap';
import { createTestApp } from '../helpers/app';
import { mintArtifact } from '../helpers/factories';

describe('configuration', () => {
  it('has working defaults and honours PORT, HOST, PH_DATA_DIR and PH_DATABASE', () => {
    const d = loadConfig({});
    expect([d.port, d.host]).toEqual([8787, '127.0.0.1']);
    expect(d.databasePath).toMatch(/data\/prefix-handles\.db$/);
    const c = loadConfig({ PORT: '9000', HOST: '0.0.0.0', PH_DATA_DIR: '/tmp/x', PH_DATABASE: '/tmp/y.db' });
    expect([c.port, c.host, c.dataDir, c.databasePath]).toEqual([9000, '0.0.0.0', '/tmp/x', '/tmp/y.db']);
    expect(loadConfig({ PH_DATA_DIR: '/tmp/z' }).databasePath).toBe('/tmp/z/prefix-handles.db');
  });

  it('reads the built-in simulator\'s pace and the proxy\'s order wait', () => {
    expect(loadConfig({}).simulator).toEqual({ firstByteDelayMs: 0, chunkDelayMs: 0, port: 0 });
    expect(loadConfig({}).proxyOrderWaitMs).toBe(120_000);
    const c = loadConfig({ PH_UPSTREAM: 'simulator', PH_SIMULATOR_FIRST_BYTE_MS: '200', PH_SIMULATOR_CHUNK_DELAY_MS: '25', PH_SIMULATOR_PORT: '8788', PH_PROXY_ORDER_WAIT_MS: '5000' });
    expect([c.upstream, c.simulator, c.proxyOrderWaitMs]).toEqual(['simulator', { firstByteDelayMs: 200, chunkDelayMs: 25, port: 8788 }, 5000]);
    expect(() => loadConfig({ PH_UPSTREAM: 'simulator', PH_SIMULATOR_PORT: '70000' })).toThrow(/PH_SIMULATOR_PORT/);
    expect(() => loadConfig({ PH_SIMULATOR_CHUNK_DELAY_MS: 'slow' })).toThrow(/PH_SIMULATOR_CHUNK_DELAY_MS/);
  });

  it('refuses PH_SIMULATOR_PORT without PH_UPSTREAM=simulator: no simulator would start and the proxy would call the providers, without a word', () => {
    // A user's trial: PH_UPSTREAM forgotten, the service started against the providers, and the SDK's placeholder key met their 401.
    const message = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return 'loaded';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(message({ PH_SIMULATOR_PORT: '41021' })).toBe(
      'invalid configuration:\n  PH_SIMULATOR_PORT: read only with PH_UPSTREAM=simulator, which is not set: no simulator would start, and the proxy would call the providers; set PH_UPSTREAM=simulator, or unset PH_SIMULATOR_PORT (got "41021")',
    );
    expect(message({ PH_UPSTREAM: 'providers', PH_SIMULATOR_PORT: '0' })).toContain('PH_SIMULATOR_PORT: read only with PH_UPSTREAM=simulator, which is "providers"');
    // The pace is read by `npm run simulator` too, from a shell both are started in: let be.
    expect(loadConfig({ PH_SIMULATOR_FIRST_BYTE_MS: '200', PH_SIMULATOR_CHUNK_DELAY_MS: '25' }).upstream).toBe('providers');
    expect(loadConfig({ PH_UPSTREAM: 'simulator', PH_SIMULATOR_PORT: '41021' }).simulator.port).toBe(41021);
    // A Kubernetes Service named ph-simulator sets it to its address: refused once, as a bad number, not twice.
    expect(message({ PH_SIMULATOR_PORT: 'tcp://10.96.0.7:80' }).split('\n').filter((l) => l.includes('PH_SIMULATOR_PORT'))).toHaveLength(1);
  });

  it('reads PH_SHUTDOWN_DELAY_MS (0 by default: the listener closes at the signal), a whole delay a timer can wait', () => {
    expect(loadConfig({}).shutdownDelayMs).toBe(0);
    expect(loadConfig({ PH_SHUTDOWN_DELAY_MS: '5000' }).shutdownDelayMs).toBe(5000);
    expect(() => loadConfig({ PH_SHUTDOWN_DELAY_MS: '5s' })).toThrow(/PH_SHUTDOWN_DELAY_MS: must be a whole number in decimal digits \(got "5s"\)/);
    expect(() => loadConfig({ PH_SHUTDOWN_DELAY_MS: '3000000000' })).toThrow(/PH_SHUTDOWN_DELAY_MS: must be at most 2147483647/);
    // A near miss is named: it would otherwise leave the delay at 0 without a word.
    expect(() => loadConfig({ PH_SHUTDOWN_DELAY: '5000' })).toThrow(/PH_SHUTDOWN_DELAY: not a variable of the service; did you mean PH_SHUTDOWN_DELAY_MS\?/);
  });

  it('lists every bad variable in one readable error', () => {
    let err: unknown;
    try {
      loadConfig({ PORT: 'eighty', PH_ADMIN_KEY: 'short-secret', PH_CACHE_TTL: '2h', PH_OPENAI_BASE_URL: 'ftp://files.example' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toMatch(/PORT: .*"eighty"/);
    expect(message).toMatch(/PH_ADMIN_KEY: must be at least 16 characters \(value not shown\)/);
    // A secret is never echoed, even a wrong one.
    expect(message).not.toContain('short-secret');
    expect(message).toMatch(/PH_CACHE_TTL/);
    expect(message).toMatch(/PH_OPENAI_BASE_URL: must be an http\(s\) URL/);
  });

  it('refuses a number that is not written in decimal digits, an empty variable, and a delay no timer can wait', () => {
    const message = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };
    // Number('') is 0: an empty PORT (an env file's `PORT=`) listened on a random port, and 0x10 on port 16.
    expect(message({ PORT: '' })).toMatch(/PORT: is empty: unset it to use the default \(got ""\)/);
    expect(message({ PORT: '0x10' })).toMatch(/PORT: must be a whole number in decimal digits \(got "0x10"\)/);
    expect(message({ PH_MAX_BODY_BYTES: '1e3' })).toMatch(/PH_MAX_BODY_BYTES: must be a whole number/);
    expect(message({ PH_MAX_BODY_BYTES: '8MiB' })).toMatch(/PH_MAX_BODY_BYTES: must be a whole number/);
    expect(message({ PH_EXPANSION_CACHE_BYTES: '0' })).toMatch(/PH_EXPANSION_CACHE_BYTES: must be at least 1/);
    // Node fires a timer set past 2^31-1 ms at once: the proxy's order wait would be 1 ms.
    expect(message({ PH_PROXY_ORDER_WAIT_MS: '99999999999' })).toMatch(/PH_PROXY_ORDER_WAIT_MS: must be at most 2147483647/);
    expect(message({ PH_UPSTREAM_TIMEOUT_MS: '3000000000' })).toMatch(/PH_UPSTREAM_TIMEOUT_MS: must be at most 2147483647/);
    expect(message({ PH_DATA_DIR: '' })).toMatch(/PH_DATA_DIR: is empty/);
    expect(message({ PH_CATALOG_FILE: '' })).toMatch(/PH_CATALOG_FILE: is empty/);
    // Parts of a base URL the proxy never sends were dropped without a word.
    expect(message({ PH_OPENAI_BASE_URL: 'https://x.openai.azure.com/openai/deployments/gpt?api-version=2024-10-21' })).toMatch(/PH_OPENAI_BASE_URL: must be an origin and a path, without a query string: the proxy would drop it/);
    expect(message({ PH_ANTHROPIC_BASE_URL: 'https://user:secret@gateway.example' })).toMatch(/PH_ANTHROPIC_BASE_URL: must be an origin and a path, without a user or password/);
    expect(message({ PH_ANTHROPIC_BASE_URL: 'https://user:secret@gateway.example' })).not.toMatch(/secret/);
    expect(loadConfig({ PH_OPENAI_BASE_URL: 'http://vllm:8000/v1/' }).openaiBaseUrl).toBe('http://vllm:8000/v1');
    expect(loadConfig({}).geminiBaseUrl).toBe('https://generativelanguage.googleapis.com');
    expect(loadConfig({ PH_GEMINI_BASE_URL: 'http://gateway:9000/gemini/' }).geminiBaseUrl).toBe('http://gateway:9000/gemini');
    // 0 stays "any free port" (serve --port 0).
    expect(loadConfig({ PORT: '0', PH_SIMULATOR_CHUNK_DELAY_MS: '0' }).port).toBe(0);
    expect(loadConfig({ PH_MAX_BODY_BYTES: '1024' }).maxBodyBytes).toBe(1024);
  });

  it('refuses a base URL that is not a URL in one line, not a stack trace', () => {
    // A missing scheme (`api.anthropic.com`) threw a TypeError out of the URL check: exit 1 and a stack trace.
    const cases: [string, string][] = [['PH_ANTHROPIC_BASE_URL', 'api.anthropic.com'], ['PH_OPENAI_BASE_URL', 'http://'], ['PH_GEMINI_BASE_URL', 'not a url']];
    for (const [name, value] of cases) {
      let err: unknown;
      try {
        loadConfig({ [name]: value, PORT: 'x' });
      } catch (e) {
        err = e;
      }
      expect(err, `${name}=${value}`).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(new RegExp(`${name}: must be an http\\(s\\) URL \\(got ${JSON.stringify(value)}\\)`));
      // Every other bad variable is still listed.
      expect((err as Error).message).toMatch(/PORT: must be a whole number/);
    }
  });

  it('refuses an admin key with whitespace in it, which no Authorization header can carry, without echoing it', () => {
    // A key from a secret file (`kubectl create secret --from-file`, `$(< file)` kept by an env file) ends in a
    // newline: it was taken, and every admin route and /metrics answered 401 to the key as the operator sent it.
    for (const key of ['admin-0123456789abcdef\n', 'admin 0123456789abcdef', ' admin-0123456789abcdef']) {
      let err: unknown;
      try {
        loadConfig({ PH_ADMIN_KEY: key });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(key)).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/PH_ADMIN_KEY: must not contain whitespace .*\(value not shown\)/);
      expect((err as Error).message).not.toContain('0123456789abcdef');
    }
    expect(loadConfig({ PH_ADMIN_KEY: 'admin-0123456789abcdef' }).adminKey).toBe('admin-0123456789abcdef');
  });

  it("reads the trace export from OpenTelemetry's own variables: off unless an endpoint is set, the signal's own endpoint and headers first", () => {
    expect(loadConfig({}).otlp).toBeNull();
    const on = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://cloud.langfuse.com/api/public/otel/', OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Basic%20cGs6c2s=,x-team=ml' }).otlp!;
    expect(on).toMatchObject({ url: 'https://cloud.langfuse.com/api/public/otel/v1/traces', headers: { Authorization: 'Basic cGs6c2s=', 'x-team': 'ml' }, serviceName: 'prefix-handles' });
    const traces = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://tempo:4318/otlp/traces', OTEL_EXPORTER_OTLP_HEADERS: 'a=1,b=2', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'b=3', OTEL_SERVICE_NAME: 'agents' }).otlp!;
    expect(traces).toMatchObject({ url: 'http://tempo:4318/otlp/traces', headers: { a: '1', b: '3' }, serviceName: 'agents' });
    // The standard switches: the SDK disabled, or no trace exporter.
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'TRUE' }).otlp).toBeNull();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }).otlp).toBeNull();
    // Empty is unset (OpenTelemetry's rule for its variables): a compose file's `OTEL_EXPORTER_OTLP_ENDPOINT=` starts
    // the service with the export off, an empty signal endpoint or service name falls back (before, a refused start).
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_HEADERS: '' }).otlp).toBeNull();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: ' ', OTEL_SERVICE_NAME: '' }).otlp).toMatchObject({ url: 'http://collector:4318/v1/traces', serviceName: 'prefix-handles' });
  });

  it('refuses an OTLP endpoint that is not an http(s) URL, and headers not in key=value form without echoing them', () => {
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4317' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT: must be an http\(s\) URL/);
    let err: unknown;
    try {
      // A header the library would drop without a word: every export then a 401.
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_HEADERS: 'Authorization: Basic c2VjcmV0' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/OTEL_EXPORTER_OTLP_HEADERS: must be key=value pairs .*\(value not shown\)/);
    expect((err as Error).message).not.toContain('c2VjcmV0');
  });

  it("reads the export's protocol (the signal's own first; http/protobuf, the specification's default), gRPC's endpoint as it is", () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    expect(loadConfig(env).otlp).toMatchObject({ protocol: 'http/protobuf', url: 'http://collector:4318/v1/traces' });
    expect(loadConfig({ ...env, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).otlp).toMatchObject({ protocol: 'http/json', url: 'http://collector:4318/v1/traces' });
    expect(loadConfig({ ...env, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).otlp!.protocol).toBe('http/protobuf');
    // gRPC: no /v1/traces (the trace service's method is the path); empty is unset, as for the other OTEL_ variables.
    const grpc = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: '', OTEL_EXPORTER_OTLP_HEADERS: 'X-Honeycomb-Team=k1' }).otlp!;
    expect(grpc).toMatchObject({ protocol: 'grpc', url: 'http://collector:4317', headers: { 'X-Honeycomb-Team': 'k1' } });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://api.honeycomb.io:443', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }).otlp).toMatchObject({ protocol: 'grpc', url: 'https://api.honeycomb.io:443' });
    // Where the start line says spans go, for each.
    expect(exportTarget(loadConfig(env).otlp!)).toBe('http://collector:4318/v1/traces (OTLP/HTTP protobuf)');
    expect(exportTarget(loadConfig({ ...env, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).otlp!)).toBe('http://collector:4318/v1/traces (OTLP/HTTP JSON)');
    expect(exportTarget(grpc)).toBe('http://collector:4317/ (OTLP/gRPC, the trace service on that host and port)');
    // And with what: the compression, timeout and resource the variables set, or their defaults.
    expect(exportSettings(loadConfig(env).otlp!)).toBe('uncompressed, timeout 10000 ms, resource service.name=prefix-handles');
    expect(
      exportSettings(loadConfig({ ...env, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TIMEOUT: '3000', OTEL_SERVICE_NAME: 'ph-sf', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=sf%20platform' }).otlp!),
    ).toBe('gzip, timeout 3000 ms, resource service.name=ph-sf, deployment.environment=prod, team=sf platform');
    expect(exportTarget(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://u:secret@collector:4318/otel' }).otlp!)).toBe('https://***@collector:4318/otel/v1/traces (OTLP/HTTP protobuf)');
    // gRPC's endpoint without a scheme (a Collector's `collector:4317`): TLS, unless the insecure setting (the signal's
    // own first) says a plain connection; the URL passed on says which, as the start line does.
    const bare = { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' };
    expect(loadConfig(bare).otlp!.url).toBe('https://collector:4317');
    expect(loadConfig({ ...bare, OTEL_EXPORTER_OTLP_INSECURE: 'TRUE' }).otlp!.url).toBe('http://collector:4317');
    expect(loadConfig({ ...bare, OTEL_EXPORTER_OTLP_INSECURE: 'true', OTEL_EXPORTER_OTLP_TRACES_INSECURE: 'false' }).otlp!.url).toBe('https://collector:4317');
    expect(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '[::1]:4317', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_INSECURE: 'true' }).otlp!.url).toBe('http://[::1]:4317');
    expect(exportTarget(loadConfig(bare).otlp!)).toBe('https://collector:4317/ (OTLP/gRPC, the trace service on that host and port)');
    // A scheme says it, whatever the insecure setting (the specification's precedence).
    expect(loadConfig({ ...bare, OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4317', OTEL_EXPORTER_OTLP_INSECURE: 'true' }).otlp!.url).toBe('https://collector:4317');
    // The signal's own endpoint is the one gRPC uses: the other may keep its OTLP/HTTP path for other signals.
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/otel', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }).otlp).toMatchObject({ protocol: 'grpc', url: 'http://collector:4317' });
  });

  it('refuses at start a protocol it does not speak, a gRPC endpoint with a path, and headers gRPC or the library would mangle', () => {
    const refused = (env: Record<string, string>) => {
      try {
        loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', ...env });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('not refused');
    };
    expect(refused({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http' })).toContain('OTEL_EXPORTER_OTLP_PROTOCOL: must be http/protobuf, http/json, grpc (the default: http/protobuf) (got "http")');
    expect(refused({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'gRPC' })).toContain('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: must be http/protobuf');
    // Langfuse's OTLP/HTTP URL with gRPC: the library would drop the path and call the host's root.
    const path = refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://pk:sk@cloud.langfuse.com/api/public/otel', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    expect(path).toContain('OTEL_EXPORTER_OTLP_ENDPOINT: with OTEL_EXPORTER_OTLP_PROTOCOL=grpc, must be an origin alone');
    expect(path).toContain('"/api/public/otel"');
    expect(path).not.toContain(':sk@');
    expect(refused({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4317/v1/traces', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' })).toContain('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: with OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc');
    // A host:port is gRPC's alone: OTLP/HTTP's endpoint is a URL.
    expect(refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toContain('OTEL_EXPORTER_OTLP_ENDPOINT: must be an http(s) URL: a host:port without a scheme is an OTLP/gRPC endpoint');
    // An IPv6 one too, no URL at all (its check of a /v1/traces path threw a TypeError at start).
    expect(refused({ OTEL_EXPORTER_OTLP_ENDPOINT: '[::1]:4318' })).toContain('OTEL_EXPORTER_OTLP_ENDPOINT: must be an http(s) URL: a host:port without a scheme is an OTLP/gRPC endpoint');
    expect(refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toContain('OTEL_EXPORTER_OTLP_ENDPOINT: must be an http(s) URL (with gRPC, a host:port too) (got "collector")');
    // A user and password the library would drop: refused, the password not shown.
    const user = refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://u:secret@collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    expect(user).toContain('OTEL_EXPORTER_OTLP_ENDPOINT: with OTEL_EXPORTER_OTLP_PROTOCOL=grpc, must be an origin alone, without a user or password');
    expect(user).not.toContain('secret');
    // A metadata name gRPC refuses: a binary one, a reserved one, or a character no metadata name has.
    const names = refused({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_HEADERS: 'token-bin=c2VjcmV0,grpc-timeout=1S,x~y=secret-2,ok=1' });
    expect(names).toContain('OTEL_EXPORTER_OTLP_HEADERS: with OTEL_EXPORTER_OTLP_PROTOCOL=grpc, each name must be');
    expect(names).toContain('"token-bin", "grpc-timeout", "x~y" (value not shown)');
    expect(names).not.toMatch(/c2VjcmV0|secret-2/);
    // The same names over OTLP/HTTP are headers like any other.
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_HEADERS: 'x~y=1' }).otlp!.headers).toEqual({ 'x~y': '1' });
    // Quotes a compose file kept around the whole variable: Node would refuse the name '"Authorization' on every export.
    for (const protocol of ['http/protobuf', 'grpc'])
      expect(refused({ OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_HEADERS: '"Authorization=Basic%20cGs6c2s=,x-langfuse-ingestion-version=4"' })).toMatch(
        /OTEL_EXPORTER_OTLP_HEADERS: each name must be an HTTP token .*quotes around the whole variable .* drop them \(value not shown\)/,
      );
    // OTLP/HTTP adds /v1/traces to the base URL: one that has it already would post to …/v1/traces/v1/traces.
    const twice = refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://u:secret@collector:4318/v1/traces/' });
    expect(twice).toContain('OTEL_EXPORTER_OTLP_ENDPOINT: the base URL, to which OTLP/HTTP adds /v1/traces: this one would send to "https://u:***@collector:4318/v1/traces/v1/traces"; drop its /v1/traces, or set the whole URL as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    expect(twice).not.toContain('secret');
    // The whole URL as the signal's own endpoint is used as it is, and a base with the path elsewhere is a base.
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/v1/traces', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }).otlp).toMatchObject({ url: 'http://collector:4318/v1/traces' });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/v1/traces-proxy' }).otlp).toMatchObject({ url: 'http://collector:4318/v1/traces-proxy/v1/traces' });
    // A ';' would end the value for the library (W3C Baggage's properties): "Bearer abc" sent for "Bearer abc;def".
    const semicolon = refused({ OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc;def' });
    expect(semicolon).toMatch(/OTEL_EXPORTER_OTLP_HEADERS: must not hold a ';'.*write it %3B \(value not shown\)/);
    expect(semicolon).not.toContain('abc');
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc%3Bdef' }).otlp!.headers).toEqual({ Authorization: 'Bearer abc;def' });
    // A value no header carries once decoded: a newline, a letter outside ASCII.
    for (const value of ['a%0Ab', 'caf%C3%A9']) expect(refused({ OTEL_EXPORTER_OTLP_TRACES_HEADERS: `x-key=${value}` })).toContain('OTEL_EXPORTER_OTLP_TRACES_HEADERS: each value must be printable ASCII once decoded');
    // A name Node would not send (each export would fail: "Header name must be a valid HTTP token"), whatever the protocol.
    for (const name of ['my key', 'x(y)', 'x%20y', 'caf%C3%A9']) {
      const message = refused({ OTEL_EXPORTER_OTLP_HEADERS: `${name}=secret-3` });
      expect(message).toContain('OTEL_EXPORTER_OTLP_HEADERS: each name must be an HTTP token');
      expect(message).not.toContain('secret-3');
    }
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_HEADERS: "x-api_key.v2=1,x!#$&'*+^`|~=2" }).otlp!.headers).toEqual({ 'x-api_key.v2': '1', "x!#$&'*+^`|~": '2' });
  });

  it('refuses at start a TLS file of the export it cannot read (the exporter would skip it without a word), only with the export on', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-tls-'));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' };
    expect(() => loadConfig({ ...on, OTEL_EXPORTER_OTLP_CERTIFICATE: ca, OTEL_EXPORTER_OTLP_CLIENT_KEY: '' })).not.toThrow();
    const missing = join(dir, 'client.key');
    // A client key without its certificate (or the reverse): no client certificate presented, every export refused.
    expect(() => loadConfig({ ...on, OTEL_EXPORTER_OTLP_CLIENT_KEY: ca })).toThrow('OTEL_EXPORTER_OTLP_CLIENT_KEY: set without OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE');
    expect(() => loadConfig({ ...on, OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: ca })).toThrow('OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: set without OTEL_EXPORTER_OTLP_CLIENT_KEY');
    expect(() => loadConfig({ ...on, OTEL_EXPORTER_OTLP_CLIENT_KEY: ca, OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: ca })).not.toThrow();
    expect(() => loadConfig({ ...on, OTEL_EXPORTER_OTLP_CLIENT_KEY: missing })).toThrow(`OTEL_EXPORTER_OTLP_CLIENT_KEY: cannot be read (ENOENT): the exporter would go on without it, and its TLS connection fail on every export (got ${JSON.stringify(missing)})`);
    // The signal's own is the one read; a directory is no file.
    expect(() => loadConfig({ ...on, OTEL_EXPORTER_OTLP_CERTIFICATE: ca, OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: dir })).toThrow('OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: cannot be read (EISDIR)');
    // The export off (no endpoint, or disabled): nothing reads it, nothing refused (a shared env file's other service's path).
    expect(loadConfig({ OTEL_EXPORTER_OTLP_CLIENT_KEY: missing }).otlp).toBeNull();
    expect(loadConfig({ ...on, OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_CLIENT_KEY: missing }).otlp).toBeNull();
  });

  it("reads the export's timeout, compression, resource, batching and span limits from the standard variables (the signal's own first), with the specification's defaults", () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    expect(loadConfig(on).otlp).toMatchObject({
      timeoutMs: 10_000,
      compression: 'none',
      serviceName: 'prefix-handles',
      resourceAttributes: {},
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      scheduledDelayMs: 5_000,
      exportTimeoutMs: 30_000,
      // Ours where unset: a request naming many handles keeps them all (an event per handle run).
      spanLimits: { attributeCountLimit: 256, attributeValueLengthLimit: Infinity, eventCountLimit: 1_000, attributePerEventCountLimit: 128 },
    });
    const set = loadConfig({
      ...on,
      OTEL_EXPORTER_OTLP_TIMEOUT: '30000',
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2500',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'none',
      OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attributes,service.version=1.4.0,k8s.pod.name=ph%2D7f9,team=ml%2Cops',
      OTEL_BSP_SCHEDULE_DELAY: '0',
      OTEL_BSP_EXPORT_TIMEOUT: '0',
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '100',
      OTEL_ATTRIBUTE_COUNT_LIMIT: '64',
      OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '4096',
      OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: '1024',
      OTEL_SPAN_EVENT_COUNT_LIMIT: '50',
    }).otlp!;
    expect(set).toMatchObject({
      timeoutMs: 2500,
      compression: 'gzip',
      serviceName: 'from-attributes',
      resourceAttributes: { 'service.version': '1.4.0', 'k8s.pod.name': 'ph-7f9', team: 'ml,ops' },
      maxQueueSize: 100,
      maxExportBatchSize: 100,
      scheduledDelayMs: 0,
      exportTimeoutMs: 0,
      spanLimits: { attributeCountLimit: 64, attributeValueLengthLimit: 1024, eventCountLimit: 50, attributePerEventCountLimit: 64 },
    });
    // The general ones alone; OTEL_SERVICE_NAME over the attributes' service.name; a queue smaller than the default
    // batch takes the batch down to it (as the SDK does), a batch set larger is refused (below).
    expect(loadConfig({ ...on, OTEL_EXPORTER_OTLP_TIMEOUT: '1', OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_SERVICE_NAME: 'agents', OTEL_RESOURCE_ATTRIBUTES: 'service.name=x', OTEL_BSP_MAX_QUEUE_SIZE: '10' }).otlp).toMatchObject({
      timeoutMs: 1,
      compression: 'gzip',
      serviceName: 'agents',
      resourceAttributes: {},
      maxQueueSize: 10,
      maxExportBatchSize: 10,
    });
    expect(loadConfig({ ...on, OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '0', OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: '3', OTEL_ATTRIBUTE_COUNT_LIMIT: '9' }).otlp!.spanLimits).toMatchObject({ attributeCountLimit: 0, attributePerEventCountLimit: 3 });
    // Empty is unset, as for the other OTEL_ variables.
    expect(loadConfig({ ...on, OTEL_EXPORTER_OTLP_TIMEOUT: '', OTEL_EXPORTER_OTLP_COMPRESSION: ' ', OTEL_RESOURCE_ATTRIBUTES: '', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '' }).otlp).toMatchObject({ timeoutMs: 10_000, compression: 'none', resourceAttributes: {}, maxExportBatchSize: 512 });
  });

  it("reads an OTEL_ number or compression with spaces around it, as the exporter library does; an export's timeout of 0 is no limit, the specification's, not unset; an empty service.name attribute is none", () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    expect(loadConfig({ ...on, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: ' 2500\t', OTEL_EXPORTER_OTLP_COMPRESSION: ' gzip ', OTEL_BSP_MAX_QUEUE_SIZE: '10 ', OTEL_SPAN_EVENT_COUNT_LIMIT: ' 7' }).otlp).toMatchObject({
      timeoutMs: 2500,
      compression: 'gzip',
      maxQueueSize: 10,
      spanLimits: { eventCountLimit: 7 },
    });
    expect(loadConfig({ ...on, OTEL_EXPORTER_OTLP_TIMEOUT: '0' }).otlp!.timeoutMs).toBe(0);
    // An empty service.name in the attributes is none: the default, not a service named "".
    expect(loadConfig({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'service.name=,team=ml' }).otlp).toMatchObject({ serviceName: 'prefix-handles', resourceAttributes: { team: 'ml' } });
    // The signal's own 0 wins over the general setting: it is a value, not an empty one.
    expect(loadConfig({ ...on, OTEL_EXPORTER_OTLP_TIMEOUT: '5000', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '0' }).otlp!.timeoutMs).toBe(0);
  });

  it('refuses at start a bad timeout, compression, resource attribute, batch setting or span limit (the libraries would skip it with a warning nobody sees)', () => {
    const refused = (env: Record<string, string>) => {
      try {
        loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', ...env });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error(`not refused: ${JSON.stringify(env)}`);
    };
    for (const name of ['OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT']) {
      expect(refused({ [name]: '10s' })).toContain(`${name}: must be a whole number of milliseconds in decimal digits, 10000 for 10s (got "10s")`);
      expect(refused({ [name]: '2.5 m' })).toContain(`${name}: must be a whole number of milliseconds in decimal digits, 150000 for 2.5 m (got "2.5 m")`);
      expect(refused({ [name]: '500ms' })).toContain(`${name}: must be a whole number of milliseconds in decimal digits, 500 for 500ms (got "500ms")`);
      expect(refused({ [name]: '-5' })).toContain(`${name}: must be a whole number of milliseconds`);
      expect(refused({ [name]: '2.5' })).toContain(`${name}: must be a whole number of milliseconds`);
      expect(refused({ [name]: '9999999999' })).toContain(`${name}: must be at most 2147483647 ms`);
    }
    for (const name of ['OTEL_EXPORTER_OTLP_COMPRESSION', 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION'])
      for (const value of ['zip', 'GZIP', 'deflate']) expect(refused({ [name]: value })).toContain(`${name}: must be gzip or none, in lower case as the specification writes them (the default: none) (got ${JSON.stringify(value)})`);
    for (const value of ['team', 'team=ml=ops', '=ml', 'a=1,b']) expect(refused({ OTEL_RESOURCE_ATTRIBUTES: value })).toMatch(/OTEL_RESOURCE_ATTRIBUTES: each entry must be key=value, the key not empty, a ',' or '=' in either written %2C or %3D: ".*" is not \(got /);
    expect(refused({ OTEL_RESOURCE_ATTRIBUTES: 'team=100%,x=1' })).toContain(`OTEL_RESOURCE_ATTRIBUTES: each '%' must start a percent-encoded UTF-8 byte (%2C, %3D, %20; a '%' itself is %25): "team=100%" does not decode (got "team=100%,x=1")`);
    expect(refused({ OTEL_RESOURCE_ATTRIBUTES: 'team=%C3' })).toContain('"team=%C3" does not decode');
    // A compose file's quotes, kept in the variable: the key would be `"deployment.environment`, the value `prod"`.
    for (const value of ['"deployment.environment=prod"', "'deployment.environment=prod,team=sf'"])
      expect(refused({ OTEL_RESOURCE_ATTRIBUTES: value })).toContain("OTEL_RESOURCE_ATTRIBUTES: quotes around the whole variable (a compose file's `- OTEL_RESOURCE_ATTRIBUTES=\"…\"`) are kept in it, in the first key and the last value: drop them");
    for (const name of ['OTEL_BSP_SCHEDULE_DELAY', 'OTEL_BSP_EXPORT_TIMEOUT']) expect(refused({ [name]: '5s' })).toContain(`${name}: must be a whole number of milliseconds in decimal digits, 5000 for 5s (got "5s")`);
    for (const name of ['OTEL_BSP_MAX_QUEUE_SIZE', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE']) {
      expect(refused({ [name]: '0' })).toContain(`${name}: must be at least 1 (got "0")`);
      expect(refused({ [name]: 'lots' })).toContain(`${name}: must be a whole number in decimal digits (got "lots")`);
    }
    // A batch larger than the queue (the SDK would cut it without a word).
    expect(refused({ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4096' })).toContain("OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must be at most the queue's size, 2048 (OTEL_BSP_MAX_QUEUE_SIZE, its default): a batch is taken from the queue (got \"4096\")");
    expect(refused({ OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '101' })).toContain("OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must be at most the queue's size, 100 (OTEL_BSP_MAX_QUEUE_SIZE): ");
    for (const name of ['OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_ATTRIBUTE_COUNT_LIMIT', 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT', 'OTEL_SPAN_EVENT_COUNT_LIMIT', 'OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT'])
      expect(refused({ [name]: 'none' })).toContain(`${name}: must be a whole number in decimal digits (got "none")`);
    // A value length of 0: the SDK would keep every value whole, not cut it to nothing.
    for (const name of ['OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT']) expect(refused({ [name]: '0' })).toContain(`${name}: must be at least 1 (got "0")`);
    // Every bad one listed at once, as for the others.
    const all = refused({ OTEL_EXPORTER_OTLP_TIMEOUT: 'x', OTEL_EXPORTER_OTLP_COMPRESSION: 'x', OTEL_RESOURCE_ATTRIBUTES: 'x' });
    expect(all.split('\n').filter((l) => l.startsWith('  OTEL_'))).toHaveLength(3);
  });

  it('refuses a PH_ variable it does not know, naming the one meant, without echoing its value', () => {
    let err: unknown;
    try {
      // A misspelt retention kept every request, forever, without a word.
      loadConfig({ PH_REQUEST_RETENTION_DAY: '30', PH_ADMINKEY: 'the-real-admin-secret', PH_TURBO: '1' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toContain('PH_REQUEST_RETENTION_DAY: not a variable of the service; did you mean PH_REQUEST_RETENTION_DAYS? (value not shown)');
    expect(message).toContain('PH_ADMINKEY: not a variable of the service; did you mean PH_ADMIN_KEY? (value not shown)');
    expect(message).toContain('PH_TURBO: not a variable of the service (value not shown)');
    expect(message).not.toContain('the-real-admin-secret');
    // The CLI's own variables live in the same environment; other programs' variables are not ours to judge.
    expect(loadConfig({ PH_URL: 'http://127.0.0.1:8787', PH_API_KEY: 'phk_x', PHP_INI_SCAN_DIR: '/etc/php', NODE_ENV: 'production' }).port).toBe(8787);
  });

  it("lets be the variables Kubernetes sets for a Service named ph or ph-… in the pod's namespace (service links, on by default)", () => {
    // A Service `ph` (or `ph-api`) gives every pod of its namespace PH_SERVICE_HOST, PH_PORT and the like: the service
    // refused to start in its own deployment.
    const links = {
      PH_SERVICE_HOST: '10.96.12.7',
      PH_SERVICE_PORT: '8787',
      PH_SERVICE_PORT_HTTP: '8787',
      PH_PORT: 'tcp://10.96.12.7:8787',
      PH_PORT_8787_TCP: 'tcp://10.96.12.7:8787',
      PH_PORT_8787_TCP_PROTO: 'tcp',
      PH_PORT_8787_TCP_PORT: '8787',
      PH_PORT_8787_TCP_ADDR: '10.96.12.7',
      PH_API_SERVICE_HOST: '10.96.12.8',
      PH_API_PORT_443_TCP_ADDR: '10.96.12.8',
    };
    expect(loadConfig(links).port).toBe(8787);
    // A misspelt setting is still refused beside them.
    expect(() => loadConfig({ ...links, PH_REQUEST_RETENTION_DAY: '30' })).toThrow('PH_REQUEST_RETENTION_DAY: not a variable of the service; did you mean PH_REQUEST_RETENTION_DAYS?');
    expect(() => loadConfig({ ...links, PH_SIMULATR_PORT: '0' })).toThrow('PH_SIMULATR_PORT: not a variable of the service; did you mean PH_SIMULATOR_PORT?');
    // Too far from any name by edits, but a real name with another tool's suffix.
    expect(() => loadConfig({ PH_DATABASE_PATH: '/srv/ph.db' })).toThrow('PH_DATABASE_PATH: not a variable of the service; did you mean PH_DATABASE? (value not shown)');
    expect(() => loadConfig({ PH_UNHEARD_OF_SETTING: '1' })).toThrow(/PH_UNHEARD_OF_SETTING: not a variable of the service \(value not shown\)/);
  });
});

describe('first start', () => {
  it('creates a default tenant and writes its key (mode 0600) only when there are no keys and no admin key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-boot-'));
    const t = createTestApp({ config: { adminKey: undefined } });
    const file = join(dir, 'api-key');
    expect(bootstrapDefaultKey(t.services.tenants, file, 'an-admin-key-0123456789')).toBeNull();
    expect(bootstrapDefaultKey(t.services.tenants, file, undefined)?.file).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const key = readFileSync(file, 'utf8').trim();
    expect((await t.app.request('/v1/handles', { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    // Second start: keys exist, nothing new is created.
    expect(bootstrapDefaultKey(t.services.tenants, join(dir, 'other'), undefined)).toBeNull();
    t.close();
  });

  it('makes no tenant when its key file cannot be written: the next start still makes one, with a key someone holds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-boot-'));
    const notADir = join(dir, 'a-file');
    writeFileSync(notADir, '');
    const t = createTestApp({ config: { adminKey: undefined } });
    expect(() => bootstrapDefaultKey(t.services.tenants, join(notADir, 'api-key'), undefined)).toThrow(/ENOTDIR|EEXIST/);
    // Before, the tenant and its key were made first: every later start found a key and wrote none.
    expect(t.services.tenants.hasAnyKey()).toBe(false);
    expect(bootstrapDefaultKey(t.services.tenants, join(dir, 'api-key'), undefined)?.file).toBe(join(dir, 'api-key'));
    t.close();
  });
});

describe('content-addressed storage', () => {
  it('stores the same bytes once, whoever mints them', async () => {
    const t = createTestApp();
    const a = t.tenant('a');
    const b = t.tenant('b');
    await mintArtifact(a.client, 'system', 'shared words');
    await mintArtifact(b.client, 'system', 'shared words');
    await mintArtifact(b.client, 'document', 'shared words');
    expect(t.sqlite.prepare('select count(*) from blobs').pluck().get()).toBe(1);
    expect(t.sqlite.prepare('select count(*) from handles').pluck().get()).toBe(3);
    t.close();
  });
});
