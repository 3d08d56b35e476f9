import { ADMIN_TOKEN, type TestStack } from './stack.js';

export interface FhirResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** A bearer token, or a source of current ones (a backend-services client asks again before expiry). */
export type TokenSource = string | (() => Promise<string>);

/** A small FHIR client over real HTTP, for tests. */
export class FhirClient {
  constructor(readonly baseUrl: string, private readonly tokenSource?: TokenSource, private readonly extraHeaders: Record<string, string> = {}) {}

  /** The bearer token this client sends now. */
  async token(): Promise<string | undefined> {
    return typeof this.tokenSource === 'function' ? this.tokenSource() : this.tokenSource;
  }

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<FhirResponse<T>> {
    const token = await this.token();
    const res = await fetch(`${this.baseUrl}${path.startsWith('/') ? path : `/fhir/${path}`}`, {
      method,
      headers: {
        accept: 'application/fhir+json',
        ...(body !== undefined ? { 'content-type': 'application/fhir+json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...this.extraHeaders,
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  get<T = any>(path: string, headers?: Record<string, string>) {
    return this.request<T>('GET', path, undefined, headers);
  }
  post<T = any>(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request<T>('POST', path, body, headers);
  }
  put<T = any>(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request<T>('PUT', path, body, headers);
  }
  delete<T = any>(path: string, headers?: Record<string, string>) {
    return this.request<T>('DELETE', path, undefined, headers);
  }
}

export function adminClient(stack: TestStack): FhirClient {
  return new FhirClient(stack.url, ADMIN_TOKEN);
}

/** Creates the Organization (as admin), registers a client for it and returns a client holding a token. */
export async function organizationClient(stack: TestStack, orgId: string, scope?: string): Promise<FhirClient> {
  const admin = adminClient(stack);
  const org = await admin.put(`Organization/${orgId}`, {
    resourceType: 'Organization',
    id: orgId,
    name: `テスト機関 ${orgId}`,
  });
  if (org.status >= 300) throw new Error(`Organization ${orgId}: ${org.status} ${JSON.stringify(org.body)}`);
  const reg = await fetch(`${stack.url}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ organization: `Organization/${orgId}`, name: `client of ${orgId}`, ...(scope ? { scope } : {}) }),
  });
  const { client_id, client_secret } = (await reg.json()) as { client_id: string; client_secret: string };
  if (!client_id) throw new Error(`client registration failed: ${reg.status}`);
  const tokens = tokenSource(stack, client_id, client_secret, scope);
  await tokens(); // the first token now: a request made later starts at once
  return new FhirClient(stack.url, tokens);
}

/** Client credentials grant, asked again 30 s before the current token expires (as a real client does). */
export function tokenSource(stack: TestStack, clientId: string, clientSecret: string, scope?: string): () => Promise<string> {
  let current: { token: string; renewAt: number } | undefined;
  return async () => {
    if (current && Date.now() < current.renewAt) return current.token;
    const res = await fetch(`${stack.url}/oauth2/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }).toString(),
    });
    const body = (await res.json()) as { access_token?: string; expires_in?: number };
    if (!body.access_token) throw new Error(`token request failed: ${res.status}`);
    current = { token: body.access_token, renewAt: Date.now() + ((body.expires_in ?? 60) - 30) * 1000 };
    return current.token;
  };
}
