import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { EndpointRefused, guardedLookup, hostOf, isPrivateAddress, type EndpointPolicy } from './endpoint-policy.js';
import type { OutboundMessage } from './notification.js';

/** A notification attempt that did not end in a 2xx answer. */
export class DeliveryFailure extends Error {
  constructor(message: string, readonly httpStatus: number | null = null, readonly refused = false) {
    super(message);
  }
}

const USER_AGENT = 'renkei-gateway (FHIR Subscription notifications)';

/**
 * Sends notifications over HTTP(S) with keep-alive connections. Connections open only to addresses the
 * endpoint policy allows (checked on the resolved address), redirects are not followed (a 3xx is a
 * failed attempt), and an attempt that has no complete answer within the timeout fails.
 */
export class WebhookClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256, scheduling: 'fifo' });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 256, scheduling: 'fifo' });
  private readonly lookup: ReturnType<typeof guardedLookup>;

  constructor(private readonly policy: EndpointPolicy) {
    this.lookup = guardedLookup(policy);
  }

  async send(message: OutboundMessage, headers: Record<string, string>, timeoutMs: number): Promise<number> {
    const url = new URL(message.url);
    const host = hostOf(url);
    if (net.isIP(host) && !this.policy.allowPrivate && isPrivateAddress(host))
      throw new DeliveryFailure(`${host} is a private or loopback address; refused`, null, true);
    const secure = url.protocol === 'https:';
    const body = Buffer.from(message.body, 'utf8');
    return new Promise<number>((resolve, reject) => {
      const req = (secure ? https : http).request(url, {
        method: message.method,
        agent: secure ? this.httpsAgent : this.httpAgent,
        lookup: this.lookup as never,
        headers: {
          'user-agent': USER_AGENT,
          accept: 'application/fhir+json, application/json;q=0.9, */*;q=0.1',
          ...(message.contentType ? { 'content-type': message.contentType } : {}),
          'content-length': String(body.length),
          ...headers,
        },
      });
      const timer = setTimeout(() => req.destroy(new DeliveryFailure(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('response', (res) => {
        res.resume();
        res.on('error', () => {});
        res.on('end', () => {
          clearTimeout(timer);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(status);
          const redirect = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
          reject(new DeliveryFailure(`HTTP ${status}${redirect}`, status));
        });
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        if (err instanceof DeliveryFailure) return reject(err);
        reject(new DeliveryFailure(err.message, null, err instanceof EndpointRefused));
      });
      req.end(body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
