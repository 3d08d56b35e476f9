import { ADMIN_TOKEN, type TestStack } from './stack.js';

export interface FhirResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** A small FHIR client over real HTTP, for tests. */
export class FhirClient {
  constructor(readonly baseUrl: string, private readonly token?: string, private readonly extraHeaders: Record<string, string> = {}) {}

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<FhirResponse<T>> {
    const res = await fetch(`${this.baseUrl}${path.startsWith('/') ? path : `/fhir/${path}`}`, {
      method,
      headers: {
        accept: 'application/fhir+json',
        ...(body !== undefined ? { 'content-type': 'application/fhir+json' } : {}),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
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
  const tokenRes = await fetch(`${stack.url}/oauth2/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client_id}:${client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }).toString(),
  });
  const token = (await tokenRes.json()) as { access_token: string };
  if (!token.access_token) throw new Error(`token request failed: ${tokenRes.status}`);
  return new FhirClient(stack.url, token.access_token);
}
