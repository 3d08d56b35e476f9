import dns, { type LookupAddress } from 'node:dns';
import net from 'node:net';
import { onOffSetting } from '../settings.js';

/**
 * Where notifications may go (SSRF defence). Unless private endpoints are allowed, a webhook may not
 * reach loopback, private, link-local, carrier-grade NAT, multicast or reserved addresses: the URL's
 * host is checked when the Subscription is written, and every address its name resolves to is checked
 * again when a connection is opened (the connection then goes to the address that was checked).
 */
export interface EndpointPolicy {
  allowPrivate: boolean;
}

export class EndpointRefused extends Error {}

const blocked = new net.BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001:db8::', 32],
  ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) blocked.addSubnet(network, prefix, 'ipv6');

/** True for an address no webhook may reach unless private endpoints are allowed. */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) has no use for a webhook but to smuggle an IPv4 address past the check.
  if (family === 6) return /^(0*:)*:?ffff:/i.test(address) || blocked.check(address, 'ipv6');
  return true;
}

const LOCAL_NAMES = /(^|\.)localhost\.?$|(^|\.)(local|internal|home\.arpa)\.?$/i;

/** Checks an endpoint URL as written: http(s), no credentials, and no private host named literally. */
export function endpointProblem(endpoint: string, policy: EndpointPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `"${endpoint}" is not an absolute URL`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `The endpoint must be http or https, not ${url.protocol}`;
  if (url.username || url.password) return 'Credentials do not belong in the endpoint URL; use channel.header';
  if (url.hash) return 'The endpoint URL cannot have a fragment';
  if (policy.allowPrivate) return undefined;
  const host = hostOf(url);
  if (net.isIP(host) ? isPrivateAddress(host) : LOCAL_NAMES.test(host))
    return `${host} is a private or loopback address; webhooks to it are refused (RENKEI_ALLOW_PRIVATE_ENDPOINTS) / 内部アドレスへの通知は許可されていません`;
  return undefined;
}

/** The URL's host without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** Resolves a host name and refuses it if any address it resolves to is private. */
export async function resolveEndpoint(host: string, policy: EndpointPolicy): Promise<LookupAddress[]> {
  const addresses = net.isIP(host) ? [{ address: host, family: net.isIP(host) }] : await dns.promises.lookup(host, { all: true });
  if (!addresses.length) throw new EndpointRefused(`${host} does not resolve`);
  refusePrivate(host, addresses, policy);
  return addresses;
}

function refusePrivate(host: string, addresses: LookupAddress[], policy: EndpointPolicy): void {
  if (policy.allowPrivate) return;
  const hidden = addresses.find((a) => isPrivateAddress(a.address));
  if (hidden) throw new EndpointRefused(`${host} resolves to a private or loopback address; refused`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for http.request that connects only to addresses the policy allows. */
export function guardedLookup(policy: EndpointPolicy) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      try {
        if (!addresses.length) throw new EndpointRefused(`${hostname} does not resolve`);
        refusePrivate(hostname, addresses, policy);
      } catch (refusal) {
        return callback(refusal as NodeJS.ErrnoException, []);
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

/** Policies registered per store, so the Subscription check on write knows this gateway's setting. */
const policies = new WeakMap<object, EndpointPolicy>();

export function registerEndpointPolicy(owner: object, policy: EndpointPolicy): void {
  policies.set(owner, policy);
}

export function endpointPolicyFor(owner: object): EndpointPolicy {
  return policies.get(owner) ?? { allowPrivate: onOffSetting(process.env, 'RENKEI_ALLOW_PRIVATE_ENDPOINTS', false) };
}
