import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, log, setLogger } from '../../src/logger.js';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`operations (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  const logged: string[] = [];
  const quiet = log;

  beforeAll(async () => {
    setLogger(createLogger('info', new Writable({ write(chunk, _enc, done) { logged.push(String(chunk)); done(); } })));
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'ops-clinic');
  });
  afterAll(async () => {
    await stack?.stop();
    setLogger(quiet);
  });

  it('answers /healthz and /readyz', async () => {
    expect(await (await fetch(`${stack.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${stack.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ store: 'ok' });
  });

  it('exports request and store metrics by route', async () => {
    await clinic.post('Patient', patient('OPS-1'));
    await clinic.get('Patient?identifier=OPS-1');
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    expect(text).toMatch(/renkei_http_requests_total\{method="POST",route="\/fhir\/:type",status="201"\} \d+/);
    expect(text).toMatch(/renkei_http_request_duration_seconds_bucket\{le="[\d.]+",method="GET",route="\/fhir\/:type"\}/);
    expect(text).toMatch(/renkei_store_operation_duration_seconds_count\{operation="write"\} \d+/);
    expect(text).toContain('process_resident_memory_bytes');
  });

  it('keeps patient names and identifiers out of the info-level log', async () => {
    await clinic.post('Patient', patient('OPS-SECRET-ID', { name: [{ family: '秘密', given: ['花子'] }] }));
    await clinic.get(`Patient?name=${encodeURIComponent('秘密')}`);
    await clinic.post('Patient', { resourceType: 'Patient', name: [{ family: '秘密' }], gender: 'invalid' });
    expect(logged.length).toBeGreaterThan(0);
    const all = logged.join('');
    expect(all).not.toContain('秘密');
    expect(all).not.toContain('花子');
    expect(all).not.toContain('OPS-SECRET-ID');
  });

  it('drains requests in flight on shutdown and then refuses new ones', async () => {
    const own = await startTestStack();
    try {
      const client = await organizationClient(own, 'ops-drain');
      const bundle = {
        resourceType: 'Bundle', type: 'transaction',
        entry: Array.from({ length: 200 }, (_, i) => ({ resource: patient(`DRAIN-${i}`), request: { method: 'POST', url: 'Patient' } })),
      };
      // Close once the gateway holds the request: before that its connection is idle, and closing resets it.
      const held = new Promise((r) => own.gateway.server.once('request', r));
      const inFlight = client.post('', bundle);
      await held;
      const closing = own.gateway.close();
      const answered = await inFlight;
      expect(answered.status).toBe(200);
      expect(answered.body.entry).toHaveLength(200);
      await closing;
      await expect(fetch(`${own.url}/healthz`)).rejects.toThrow();
    } finally {
      await own.stop(); // its store and queue keys go whatever the outcome
    }
  });
});
