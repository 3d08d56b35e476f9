import http from 'node:http';
import type { Observation, Patient, Resource } from '@medplum/fhirtypes';

const KEEP_ALIVE = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function patientOf(localId: string): Patient {
  return {
    resourceType: 'Patient',
    identifier: [{ system: 'urn:oid:1.2.392.100495.20.3.51.11310000099', value: localId }],
    name: [
      { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation', valueCode: 'IDE' }], family: '山田', given: ['太郎'] },
      { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation', valueCode: 'SYL' }], family: 'ヤマダ', given: ['タロウ'] },
    ],
    gender: 'male',
    birthDate: '1935-07-10',
    telecom: [{ system: 'phone', value: '048-000-1111' }],
    address: [{ text: '埼玉県さいたま市浦和区高砂三丁目１番地', postalCode: '3300063' }],
  };
}

export function observationOf(patientId: string, n: number): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '8310-5', display: 'Body temperature' }] },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: new Date(Date.UTC(2026, 10, 1) + n * 3_600_000).toISOString(),
    valueQuantity: { value: 36 + (n % 30) / 10, unit: 'Cel', system: 'http://unitsofmeasure.org', code: 'Cel' },
  };
}

/** A registered client's access tokens (client_credentials), asked again 30 s before one expires. */
export class ClientCredentials {
  private current = '';
  private expiresAt = 0;

  constructor(private readonly url: string, private readonly id: string, private readonly secret: string) {}

  async token(): Promise<string> {
    if (Date.now() < this.expiresAt - 30_000) return this.current;
    const res = await fetch(`${this.url}/oauth2/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${this.id}:${this.secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    if (!res.ok) throw new Error(`token: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { access_token: string; expires_in: number };
    this.current = body.access_token;
    this.expiresAt = Date.now() + body.expires_in * 1000;
    return this.current;
  }
}

/** A registered client of the gateway under benchmark, renewing its token as it nears expiry. */
export class BenchClient {
  private readonly credentials: ClientCredentials;

  private constructor(private readonly url: string, id: string, secret: string) {
    this.credentials = new ClientCredentials(url, id, secret);
  }

  static async register(url: string, adminToken: string, orgId: string): Promise<BenchClient> {
    const headers = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/fhir+json' };
    const org = await fetch(`${url}/fhir/Organization/${orgId}`, {
      method: 'PUT', headers, body: JSON.stringify({ resourceType: 'Organization', id: orgId, name: 'ベンチ診療所' }),
    });
    if (!org.ok) throw new Error(`Organization: ${org.status}`);
    const reg = await fetch(`${url}/admin/clients`, {
      method: 'POST', headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ organization: `Organization/${orgId}`, name: 'bench' }),
    });
    const { client_id, client_secret } = (await reg.json()) as { client_id: string; client_secret: string };
    return new BenchClient(url, client_id, client_secret);
  }

  private auth(): Promise<string> {
    return this.credentials.token();
  }

  async create(resource: Resource): Promise<string> {
    const res = await this.send('POST', `/fhir/${resource.resourceType}`, JSON.stringify(resource), { prefer: 'return=minimal' });
    if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`);
    return String(res.headers.location).split('/').slice(-3)[0];
  }

  async transaction(resources: Resource[]): Promise<void> {
    const bundle = {
      resourceType: 'Bundle', type: 'transaction',
      entry: resources.map((resource) => ({ resource, request: { method: 'POST', url: resource.resourceType } })),
    };
    const res = await this.send('POST', '/fhir', JSON.stringify(bundle), { prefer: 'return=minimal' });
    if (res.status !== 200) throw new Error(`transaction: ${res.status} ${res.text.slice(0, 500)}`);
  }

  async get(path: string): Promise<any> {
    const res = await this.send('GET', `/fhir/${path}`);
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
    return JSON.parse(res.text);
  }

  /** Any request; the caller checks the status. */
  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    return this.send(method, `/fhir/${path}`, body === undefined ? undefined : JSON.stringify(body), headers);
  }

  /** node:http with keep-alive: the load generator shares the machine, so it should cost little CPU. */
  private async send(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
    const authorization = `Bearer ${await this.auth()}`;
    return new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
      const req = http.request(`${this.url}${path}`, {
        method, agent: KEEP_ALIVE,
        headers: { authorization, accept: 'application/fhir+json', ...(body ? { 'content-type': 'application/fhir+json' } : {}), ...headers },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}
