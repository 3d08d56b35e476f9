import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fromRoot } from '../paths.js';
import { MappingEngine, MappingError } from './engine.js';
import { assertSpec, type SourceKind } from './spec.js';

/**
 * Every mapping file under mappings/ (hl7v2/, careplan-csv/, care-records/), loaded and checked once at
 * start: a broken mapping file stops the gateway rather than failing messages one by one.
 */
export class MappingRegistry {
  private readonly byId = new Map<string, MappingEngine>();
  private readonly byMessageType = new Map<string, MappingEngine>();

  constructor(engines: MappingEngine[]) {
    for (const engine of engines) {
      if (this.byId.has(engine.spec.id)) throw new MappingError(`mapping id ${engine.spec.id} is used twice`);
      this.byId.set(engine.spec.id, engine);
      for (const type of engine.spec.messageTypes ?? []) {
        if (this.byMessageType.has(type)) throw new MappingError(`message type ${type} is mapped twice`);
        this.byMessageType.set(type, engine);
      }
    }
  }

  static load(checkers: Record<SourceKind, (path: string) => string | undefined>, dir = fromRoot('mappings')): MappingRegistry {
    const engines: MappingEngine[] = [];
    for (const folder of readdirSync(dir)) {
      const full = path.join(dir, folder);
      if (!statSync(full).isDirectory()) continue;
      for (const file of readdirSync(full).filter((f) => f.endsWith('.json')).sort()) {
        const name = `${folder}/${file}`;
        const spec = assertSpec(JSON.parse(readFileSync(path.join(full, file), 'utf8')), name);
        if (spec.id !== name.replace(/\.json$/, '')) throw new MappingError(`${name}: id must be "${name.replace(/\.json$/, '')}"`);
        engines.push(new MappingEngine(spec, checkers[spec.source]));
      }
    }
    return new MappingRegistry(engines);
  }

  /** The mapping for an HL7 message type (MSH-9.1^MSH-9.2, e.g. RDE^O11). */
  forMessageType(type: string): MappingEngine | undefined {
    return this.byMessageType.get(type);
  }

  get(id: string): MappingEngine | undefined {
    return this.byId.get(id);
  }

  messageTypes(): string[] {
    return [...this.byMessageType.keys()].sort();
  }

  ids(prefix = ''): string[] {
    return [...this.byId.keys()].filter((id) => id.startsWith(prefix)).sort();
  }
}
