/**
 * Structured JSON logs (pino). Secrets are redacted by path so that a stray `log.info({agent})`
 * cannot leak a model key, an MCP env value or a bearer token.
 */
import { pino } from 'pino';
import { config } from './config.js';

export const log = pino({
  level: config.logLevel,
  base: { instance: config.instance },
  redact: {
    paths: [
      'req.headers.authorization',
      'headers.authorization',
      '*.llm_api_key',
      'llm_api_key',
      '*.env',
      '*.webhook_secret',
      '*.key',
      'token',
    ],
    censor: '[redacted]',
  },
});

export type Logger = typeof log;
