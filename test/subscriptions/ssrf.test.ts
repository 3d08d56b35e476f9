import dns from 'node:dns';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPrivateAddress } from '../../src/subscriptions/endpoint-policy.js';
import { DeliveryFailure, WebhookClient } from '../../src/subscriptions/webhook-client.js';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';
import { Receiver } from './receiver.js';
import { criteriaSubscription, DELIVERING, waitForStatus } from './subscriptions.js';

describe(`webhook endpoints on private addresses are refused (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;

  beforeAll(async () => {
    stack = await startTestStack({ ...DELIVERING, RENKEI_ALLOW_PRIVATE_ENDPOINTS: 'false' });
    clinic = await organizationClient(stack, 'ssrf-clinic');
  });
  afterAll(() => stack?.stop());

  it('refuses on write an endpoint that names a private, loopback or link-local address', async () => {
    for (const endpoint of [
      'http://127.0.0.1:8080/hook', 'http://2130706433/hook', 'http://[::1]/hook', 'http://[::ffff:127.0.0.1]/hook', 'http://10.1.2.3/hook',
      'http://192.168.0.10/hook', 'http://169.254.169.254/latest/meta-data', 'http://localhost:3000/hook', 'https://api.localhost/hook',
    ]) {
      const res = await clinic.post('Subscription', criteriaSubscription(endpoint, 'Patient'));
      expect(res.status, endpoint).toBe(422);
      expect(res.body.issue[0]).toMatchObject({ code: 'security', expression: ['Subscription.channel.endpoint'] });
    }
  });

  it('checks the addresses a name resolves to: a name of this machine puts the subscription in error', async () => {
    const host = os.hostname();
    const addresses = await dns.promises.lookup(host, { all: true });
    expect(addresses.some((a) => isPrivateAddress(a.address)), `${host} should resolve to a private address here`).toBe(true);
    const created = await clinic.post('Subscription', criteriaSubscription(`http://${host}:9/hook`, 'Patient'));
    expect(created.status).toBe(201);
    const failed = await waitForStatus(clinic, created.body.id, 'error');
    expect(failed.error).toContain('private or loopback');
  });
});

describe('webhook client', () => {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await Receiver.start();
  });
  afterAll(() => receiver.close());

  const message = (url: string) => ({ method: 'POST' as const, url, body: '{}', contentType: 'application/fhir+json' });

  it('refuses at connection time a name that resolves to loopback, and sends nothing', async () => {
    const port = new URL(receiver.url).port;
    const client = new WebhookClient({ allowPrivate: false });
    const refused = await client.send(message(`http://localhost:${port}/x`), {}, 2000).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(DeliveryFailure);
    expect((refused as DeliveryFailure).refused).toBe(true);
    const literal = await client.send(message(`${receiver.url}/x`), {}, 2000).catch((err: unknown) => err);
    expect((literal as DeliveryFailure).refused).toBe(true);
    expect(receiver.requests).toEqual([]);
    client.close();

    const allowed = new WebhookClient({ allowPrivate: true });
    expect(await allowed.send(message(`http://localhost:${port}/x`), { 'x-test': '1' }, 2000)).toBe(200);
    expect(receiver.requests.map((r) => [r.path, r.headers['x-test']])).toEqual([['/x', '1']]);
    allowed.close();
  });

  it('tells private and public addresses apart', () => {
    const privateOnes = ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1',
      '::1', '::', 'fe80::1', 'fd00::1', '::ffff:10.0.0.1', 'not-an-address'];
    const publicOnes = ['8.8.8.8', '133.242.0.1', '172.32.0.1', '2001:4860:4860::8888'];
    expect(privateOnes.filter((a) => !isPrivateAddress(a))).toEqual([]);
    expect(publicOnes.filter((a) => isPrivateAddress(a))).toEqual([]);
  });
});
