import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

describe('settings', () => {
  it('starts with the documented defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 8080, mllpPort: 2575, allowPrivateEndpoints: false, tokenLifetimeSeconds: 300, maxBodyBytes: 16 * 1024 * 1024 });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.exchange.workers).toBe(true);
  });

  it('reads on/off settings in each usual spelling', () => {
    for (const on of ['true', 'on', '1', 'yes', 'TRUE']) expect(loadConfig({ RENKEI_ALLOW_PRIVATE_ENDPOINTS: on }).allowPrivateEndpoints, on).toBe(true);
    for (const off of ['false', 'off', '0', 'no', '']) expect(loadConfig({ RENKEI_ALLOW_PRIVATE_ENDPOINTS: off }).allowPrivateEndpoints, off).toBe(false);
  });

  it('refuses a value it cannot read instead of falling back silently', () => {
    expect(() => loadConfig({ RENKEI_ALLOW_PRIVATE_ENDPOINTS: 'enabled' })).toThrow(/RENKEI_ALLOW_PRIVATE_ENDPOINTS/);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ RENKEI_MAX_BODY: 'huge' })).toThrow(/RENKEI_MAX_BODY/);
  });

  it('applies production HL7 messages only unless told otherwise', () => {
    expect(loadConfig({}).ingest.processingIds).toEqual(['P']);
    expect(loadConfig({ RENKEI_HL7_PROCESSING_IDS: 'p, t' }).ingest.processingIds).toEqual(['P', 'T']);
    expect(() => loadConfig({ RENKEI_HL7_PROCESSING_IDS: 'X' })).toThrow(/RENKEI_HL7_PROCESSING_IDS/);
  });

  it('caps the token lifetime at 300 s and reads sizes with units', () => {
    expect(loadConfig({ RENKEI_TOKEN_LIFETIME: '3600' }).tokenLifetimeSeconds).toBe(300);
    expect(loadConfig({ RENKEI_MAX_BODY: '512kb' }).maxBodyBytes).toBe(512 * 1024);
  });

  it('moves the workers out of serve on the server deployment unless asked', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://db/renkei' }).exchange.workers).toBe(false);
    expect(loadConfig({ DATABASE_URL: 'postgres://db/renkei', RENKEI_WORKERS: 'on' }).exchange.workers).toBe(true);
  });
});
