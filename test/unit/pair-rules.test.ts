import { expect } from 'chai';
import { isDomainError } from '../../src/domain/errors.js';
import { checkTurn, expectedTurn, parseApproval, type TurnRole } from '../../src/services/pair-rules.js';

const generator = { id: 'g-id', handle: 'gen' };
const reviewer = { id: 'r-id', handle: 'rev' };
const pair = (lastRole?: string | null, drive = false) => ({ drive, generator, reviewer, lastRole });

/** The conflict message, or the agent id the turn is recorded for. */
function attempt(agentId: string, role: TurnRole, p: ReturnType<typeof pair>): string {
  try {
    return checkTurn({ agentId, role }, p);
  } catch (err) {
    if (isDomainError(err, 'conflict')) return `409: ${err.message}`;
    throw err;
  }
}

describe('pair turn rules (seed 000)', () => {
  it('generate and review alternate, starting with generate', () => {
    expect(expectedTurn(undefined)).to.equal('generate');
    expect(expectedTurn(null)).to.equal('generate');
    expect(expectedTurn('generate')).to.equal('review');
    expect(expectedTurn('review')).to.equal('generate');
  });

  it('the right agent on the right turn is recorded under its id, named by id or by handle', () => {
    expect(attempt('gen', 'generate', pair())).to.equal('g-id');
    expect(attempt('g-id', 'generate', pair('review'))).to.equal('g-id');
    expect(attempt('rev', 'review', pair('generate'))).to.equal('r-id');
  });

  it('out of turn, or from the wrong agent: 409 saying what was expected', () => {
    expect(attempt('rev', 'review', pair())).to.match(/^409: Out of turn: expected a generate turn from the generator/);
    expect(attempt('gen', 'generate', pair('generate'))).to.match(/^409: Out of turn: expected a review turn from the reviewer/);
    expect(attempt('rev', 'generate', pair())).to.equal('409: generate turns come from the generator ("gen", g-id), not "rev"');
    expect(attempt('someone', 'review', pair('generate'))).to.match(/^409: review turns come from the reviewer/);
  });

  it('an interrupt comes from anyone at any time, and does not change whose turn it is', () => {
    for (const last of [undefined, 'generate', 'review']) {
      expect(attempt('gen', 'interrupt', pair(last))).to.equal('g-id');
      expect(attempt('r-id', 'interrupt', pair(last))).to.equal('r-id');
      expect(attempt('a-human', 'interrupt', pair(last))).to.equal('a-human');
    }
    // The caller passes the last generate/review role, interrupts excluded: a game of turns.
    const roles: Array<[string, TurnRole]> = [['gen', 'generate'], ['x', 'interrupt'], ['rev', 'review'], ['rev', 'interrupt'], ['gen', 'generate']];
    let last: string | undefined;
    for (const [who, role] of roles) {
      expect(attempt(who, role, pair(last))).not.to.match(/^409/);
      if (role !== 'interrupt') last = role;
    }
  });

  it('in a driven pair the runtime plays generate and review: a client may only interrupt', () => {
    expect(attempt('gen', 'generate', pair(undefined, true))).to.match(/^409: The runtime plays the generate and review turns/);
    expect(attempt('rev', 'review', pair('generate', true))).to.match(/^409: The runtime plays/);
    expect(attempt('rev', 'interrupt', pair('generate', true))).to.equal('r-id');
  });
});

describe('parseApproval: the reviewer\'s verdict in drive mode', () => {
  it('APPROVED with an optional score, clamped to 0..1', () => {
    expect(parseApproval('APPROVED score=0.85')).to.deep.equal({ approved: true, score: 0.85 });
    expect(parseApproval('Looks good. APPROVED (score: .9)')).to.deep.equal({ approved: true, score: 0.9 });
    expect(parseApproval('APPROVED')).to.deep.equal({ approved: true, score: null });
    expect(parseApproval('APPROVED score=7')).to.deep.equal({ approved: true, score: 1 });
    expect(parseApproval('APPROVED Score = 0')).to.deep.equal({ approved: true, score: 0 });
  });

  it('anything else is feedback, not approval', () => {
    for (const s of ['NOT APPROVED score=0.2', 'not   approved', 'approved, I guess', 'UNAPPROVED', 'APPROVEDISH', '', null]) {
      expect(parseApproval(s), String(s)).to.deep.equal({ approved: false, score: null });
    }
  });
});
