import type { Api } from '../lib/client.js';
import type { Stack } from '../lib/stack.js';

export interface Ctx {
  api: Api;
  stack: Stack;
  quick: boolean;
  signal: AbortSignal;
  /** Session ids this scenario created: stopped (containers removed) after it, whatever happened. */
  sessions: string[];
  /** Extra containers (baselines) to remove after it. */
  containers: string[];
}

export interface ScenarioResult {
  name: string;
  ours: Record<string, number> | null;
  baseline: Record<string, number> | null;
  ratio: number | null;
  goal: number;
  error?: string;
  /** For the printed table only (not written to the JSON). */
  show?: { ours: string; baseline: string; note?: string };
}

export interface Scenario {
  name: string;
  goal: number;
  /** Aliases accepted by BENCH_ONLY (e.g. "resume" for the pause scenario). */
  aliases?: string[];
  timeoutMs(quick: boolean): number;
  run(ctx: Ctx): Promise<ScenarioResult | ScenarioResult[]>;
}
