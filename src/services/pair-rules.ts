/**
 * Pair session rules (seed 000), pure so the unit tier checks them without a database.
 *
 * Turns: generate and review alternate, starting with generate; generate comes from the
 * generator, review from the reviewer; interrupt comes from anyone at any time and does not change
 * whose turn it is. In drive mode the runtime plays generate and review itself, so a client may
 * only interrupt.
 */
import { conflict } from '../domain/errors.js';

import type { TurnRole } from '../db/repositories/pairs.js';

export type { TurnRole };

/** An agent of the pair, as a turn may name it: by id or by handle. */
export interface PairAgent {
  id: string;
  handle: string;
}

/** The turn that comes next after the last generate or review turn (interrupts do not count). */
export const expectedTurn = (lastRole: string | null | undefined): 'generate' | 'review' => (lastRole === 'generate' ? 'review' : 'generate');

const names = (a: PairAgent, ref: string) => ref === a.id || ref === a.handle;
const who = (role: 'generate' | 'review') => (role === 'generate' ? 'generator' : 'reviewer');

/**
 * Checks a turn posted by hand and returns the id of the agent it is recorded for. Throws a
 * conflict when it is out of turn, comes from the wrong agent, or is a generate/review turn in a
 * driven pair. `lastRole` is the role of the last generate or review turn (not needed for an
 * interrupt). An interrupt from someone outside the pair is recorded under the name given.
 */
export function checkTurn(
  input: { agentId: string; role: TurnRole },
  pair: { drive: boolean; generator: PairAgent; reviewer: PairAgent; lastRole?: string | null },
): string {
  const { generator: gen, reviewer: rev } = pair;
  if (input.role === 'interrupt') return names(gen, input.agentId) ? gen.id : names(rev, input.agentId) ? rev.id : input.agentId;
  if (pair.drive) throw conflict('The runtime plays the generate and review turns of a driven pair session; post an interrupt turn to step in');
  const expected = expectedTurn(pair.lastRole);
  if (input.role !== expected) {
    throw conflict(`Out of turn: expected a ${expected} turn from the ${who(expected)} next (generate and review alternate, starting with generate)`);
  }
  const owner = expected === 'generate' ? gen : rev;
  if (!names(owner, input.agentId)) {
    throw conflict(`${expected} turns come from the ${who(expected)} ("${owner.handle}", ${owner.id}), not "${input.agentId}"`);
  }
  return owner.id;
}

/**
 * The reviewer approves by calling finish with a summary containing APPROVED and, optionally, a
 * score: "APPROVED score=0.85 ...". Anything else is feedback for the generator's next round.
 */
export function parseApproval(summary: string | null): { approved: boolean; score: number | null } {
  if (!summary || !/\bAPPROVED\b/.test(summary) || /\bNOT\s+APPROVED\b/i.test(summary)) return { approved: false, score: null };
  const m = /\bscore\s*[=:]\s*(\d*\.?\d+)/i.exec(summary);
  const score = m ? Math.min(1, Math.max(0, Number(m[1]))) : null;
  return { approved: true, score: Number.isFinite(score) ? score : null };
}
