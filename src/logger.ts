import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Structured logs. Patient names and identifiers never appear at info level: log resource types,
 * ids, counts and outcomes; anything carrying patient data belongs at debug at most.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'renkei' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'client_secret'], censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}

export let log: Logger = createLogger(process.env.LOG_LEVEL || (process.env.VITEST ? 'silent' : 'info'));

export function setLogger(logger: Logger): void {
  log = logger;
}
