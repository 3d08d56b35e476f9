import { describe, expect, it } from 'vitest';
import { parseSubscription, SpecError } from '../../src/subscriptions/spec.js';
import { criteriaSubscription, TOPIC, topicSubscription } from './subscriptions.js';

const parse = (s: object) => parseSubscription({ id: 's1', ...s } as never);
const problem = (s: object) => {
  try {
    parse(s);
  } catch (err) {
    if (err instanceof SpecError) return [err.expression, err.message];
    throw err;
  }
  return undefined;
};

describe('reading a Subscription', () => {
  it('reads an R4 criteria-based rest-hook: the search, payload and headers', () => {
    const spec = parse(criteriaSubscription('https://network.example.jp/hook', 'MedicationRequest?patient=Patient/p1&status=active', {
      headers: ['Authorization: Bearer xyz'],
    }));
    expect(spec).toMatchObject({ kind: 'criteria', content: 'full-resource', payload: 'application/fhir+json', resourceTypes: ['MedicationRequest'] });
    expect(spec.criteria!.criteria.map((c) => [c.code, c.values])).toEqual([['patient', ['Patient/p1']], ['status', ['active']]]);
    expect(spec.headers).toEqual([['Authorization', 'Bearer xyz']]);
    expect(parse(criteriaSubscription('https://x.example.jp', 'Patient', { payload: false }))).toMatchObject({ content: 'empty', payload: undefined });
  });

  it('reads a Backport IG topic subscription: topic, typed and untyped filters, content, heartbeat', () => {
    const spec = parse(topicSubscription('https://x.example.jp', 'medication-change', {
      filters: ['patient=Patient/p1', 'MedicationRequest?patient=Patient/p2'], content: 'full-resource', heartbeat: 60,
    }));
    expect(spec).toMatchObject({ kind: 'topic', content: 'full-resource', heartbeatSeconds: 60, resourceTypes: ['MedicationRequest', 'MedicationStatement'] });
    expect(spec.topic!.url).toBe(TOPIC('medication-change'));
    expect(spec.filters.map((f) => [f.resourceType, Object.keys(f.byType)])).toEqual([
      [undefined, ['MedicationRequest', 'MedicationStatement']],
      ['MedicationRequest', ['MedicationRequest']],
    ]);
  });

  it('names the element it cannot serve', () => {
    const base = criteriaSubscription('https://x.example.jp', 'Patient');
    expect(problem({ ...base, criteria: 'Patient?_count=10' })?.[0]).toBe('Subscription.criteria');
    expect(problem({ ...base, criteria: 'Observation?date=2026-13-45' })?.[0]).toBe('Subscription.criteria');
    expect(problem({ ...base, channel: { ...base.channel, type: 'email' } })?.[0]).toBe('Subscription.channel.type');
    expect(problem({ ...base, channel: { ...base.channel, header: ['no colon'] } })?.[0]).toBe('Subscription.channel.header[0]');
    expect(problem({ ...base, channel: { ...base.channel, header: ['Host: evil.example'] } })?.[0]).toBe('Subscription.channel.header[0]');
    expect(problem(topicSubscription('https://x.example.jp', 'no-such-topic'))?.[0]).toBe('Subscription.criteria');
    expect(problem(topicSubscription('https://x.example.jp', 'careplan-change', { filters: ['Observation?code=x'] }))?.[0])
      .toBe('Subscription.criteria.extension[0]');
    expect(problem(topicSubscription('https://x.example.jp', 'careplan-change', { filters: ['patient=Patient/p1', 'status=active'] }))?.[0])
      .toBe('Subscription.criteria.extension[1]');
  });
});
