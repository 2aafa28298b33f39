/**
 * Pair sessions (seed 000) and their turns. Drive mode's state machine lives in the pair row
 * (current round, its claim); every step of it is one compare-and-set statement here, so
 * concurrent or repeated nudges do it once. Turns sort by seq (a bigserial), the order they
 * were taken.
 */
import { db, type Db, type Tx } from '../knex.js';

export type PairStatus = 'active' | 'completed' | 'abandoned';
export type TurnRole = 'generate' | 'review' | 'interrupt';
/** The turns a driven round plays. */
export type RoundRole = Exclude<TurnRole, 'interrupt'>;

export interface PairRow {
  id: string;
  project_id: string;
  /** The sandbox both agents work in. */
  workspace_id: string;
  generator_id: string;
  reviewer_id: string;
  task: string;
  status: PairStatus;
  quality_score: number | null;
  /** The runtime plays the turns. */
  drive: boolean;
  max_turns: number;
  created_by_member_id: string | null;
  /** Drive mode: the round at work (its session, its role, the event index its message took). */
  current_session_id: string | null;
  current_role: RoundRole | null;
  current_from_index: number | null;
  generator_session_id: string | null;
  reviewer_session_id: string | null;
  end_reason: string | null;
  ended_at: Date | null;
  /** Drive mode: the token of whoever is starting the next round, and since when. */
  round_claim: string | null;
  round_claimed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface PairTurnRow {
  id: string;
  /** bigserial (node-postgres returns it as a string): the order of the turns. */
  seq: string;
  pair_session_id: string;
  /** The agent's id, or for an interrupt whoever the client named. */
  agent_id: string;
  role: TurnRole;
  content: string;
  /** Drive mode: the round's session that said it. */
  session_id: string | null;
  created_at: Date;
}

export type NewPair = Pick<PairRow, 'id' | 'project_id' | 'workspace_id' | 'generator_id' | 'reviewer_id' | 'task' | 'drive' | 'max_turns'> & {
  created_by_member_id: string;
};

export async function insert(tx: Tx, row: NewPair): Promise<PairRow> {
  const [out] = await tx('pair_sessions').insert(row).returning('*');
  return out;
}

export async function byId(id: string): Promise<PairRow | undefined> {
  return db('pair_sessions').where({ id }).first();
}

/** Only within these projects (another project's pair is not found). */
export async function inProjects(projectIds: string[], id: string): Promise<PairRow | undefined> {
  return db('pair_sessions').where({ id }).whereIn('project_id', projectIds).first();
}

/** Pairs in these projects, newest first, and how many there are in all. */
export async function list(projectIds: string[], q: { status?: PairStatus; participant?: string; limit: number; offset: number }): Promise<{ rows: PairRow[]; total: number }> {
  const base = db('pair_sessions').whereIn('project_id', projectIds);
  if (q.status) base.andWhere({ status: q.status });
  if (q.participant) base.andWhere((w) => w.where({ generator_id: q.participant }).orWhere({ reviewer_id: q.participant }));
  const [{ count }] = await base.clone().count<{ count: string }[]>('* as count');
  const rows: PairRow[] = await base.orderBy('created_at', 'desc').limit(q.limit).offset(q.offset);
  return { rows, total: Number(count) };
}

/** The pair row, locked until the transaction ends (hand-posted turns take it one at a time). */
export async function lock(tx: Tx, id: string): Promise<PairRow> {
  return tx('pair_sessions').where({ id }).forUpdate().first();
}

/** Each pair's turns in order (every id in the map, with no turns if it has none). */
export async function turnsOf(pairIds: string[]): Promise<Map<string, PairTurnRow[]>> {
  const out = new Map<string, PairTurnRow[]>(pairIds.map((id) => [id, []]));
  if (!pairIds.length) return out;
  const rows: PairTurnRow[] = await db('pair_turns').whereIn('pair_session_id', pairIds).orderBy('seq');
  for (const t of rows) out.get(t.pair_session_id)!.push(t);
  return out;
}

/** The latest generate or review turn (interrupts do not count). */
export async function lastPlayedTurn(pairId: string, conn: Db = db): Promise<PairTurnRow | undefined> {
  return conn('pair_turns').where({ pair_session_id: pairId }).whereNot({ role: 'interrupt' }).orderBy('seq', 'desc').first();
}

/** Records a hand-posted turn and touches the pair. */
export async function insertTurn(tx: Tx, turn: { pair_session_id: string; agent_id: string; role: TurnRole; content: string }): Promise<PairTurnRow> {
  const [row] = await tx('pair_turns').insert(turn).returning('*');
  await tx('pair_sessions').where({ id: turn.pair_session_id }).update({ updated_at: tx.fn.now() });
  return row;
}

export async function finish(tx: Tx, id: string, status: Exclude<PairStatus, 'active'>, score: number | null, reason: string): Promise<void> {
  await tx('pair_sessions').where({ id }).update({ status, quality_score: score, end_reason: reason, ended_at: tx.fn.now(), updated_at: tx.fn.now() });
}

/** CAS: ends the pair if it is still active. False when it had already ended. */
export async function endIfActive(id: string, status: Exclude<PairStatus, 'active'>, score: number | null, reason: string): Promise<boolean> {
  const n = await db('pair_sessions').where({ id, status: 'active' })
    .update({ status, quality_score: score, end_reason: reason, ended_at: db.fn.now(), updated_at: db.fn.now() });
  return n > 0;
}

/**
 * CAS: claims the start of the next round of an active driven pair with no round at work, unless
 * someone holds a claim made after `staleBefore`. The pair row, or undefined when not claimed.
 */
export async function claimRound(id: string, token: string, staleBefore: Date): Promise<PairRow | undefined> {
  const [p] = await db('pair_sessions').where({ id, status: 'active', drive: true }).whereNull('current_session_id')
    .andWhere((w) => w.whereNull('round_claim').orWhere('round_claimed_at', '<', staleBefore))
    .update({ round_claim: token, round_claimed_at: db.fn.now() })
    .returning('*');
  return p;
}

/** CAS under the claim's token: the round has started in this session; the claim is released. */
export async function recordRoundStart(id: string, token: string, round: { sessionId: string; role: RoundRole; fromIndex: number }): Promise<void> {
  await db('pair_sessions').where({ id, round_claim: token }).update({
    current_session_id: round.sessionId, current_role: round.role, current_from_index: round.fromIndex, round_claim: null, round_claimed_at: null,
    [round.role === 'generate' ? 'generator_session_id' : 'reviewer_session_id']: round.sessionId, updated_at: db.fn.now(),
  });
}

/**
 * Records the end of the round at work, once: a compare-and-set on that round (its session and
 * from-index) that hands the turn to `next`, with the round's turn, in one transaction.
 * Returns how many generate and review turns the pair now has, or null when someone else
 * recorded this round.
 */
export async function closeRound(
  pair: Pick<PairRow, 'id' | 'current_from_index'>,
  round: { sessionId: string; role: RoundRole; agentId: string; content: string; next: RoundRole },
): Promise<number | null> {
  return db.transaction(async (tx) => {
    const n = await tx('pair_sessions')
      .where({ id: pair.id, status: 'active', current_session_id: round.sessionId, current_from_index: pair.current_from_index })
      .update({ current_session_id: null, current_role: round.next, updated_at: tx.fn.now() });
    if (!n) return null;
    await tx('pair_turns').insert({ pair_session_id: pair.id, agent_id: round.agentId, role: round.role, content: round.content, session_id: round.sessionId });
    const [{ n: count }] = await tx('pair_turns').where({ pair_session_id: pair.id }).whereIn('role', ['generate', 'review']).count<{ n: string }[]>('* as n');
    return Number(count);
  });
}
