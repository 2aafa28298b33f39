/**
 * Who is calling, as the rules see it: a user (JWT `sub`) or an agent acting with its API key.
 * src/http/auth.ts turns a bearer token into one; services decide what it may do.
 */
export type Principal =
  | { kind: 'user'; userId: string }
  | { kind: 'agent'; agentId: string; projectId: string; memberId: string; keyId: string };
