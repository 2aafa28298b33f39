/** Sign-in: paste a token (a user JWT or an agent API key), or, when the server allows it, the dev sign-in. */
import { useState } from 'preact/hooks';
import { api, auth } from '../api';
import { Field, Form } from '../ui';

export function SignIn({ onSignedIn }: { onSignedIn(): void }) {
  const [token, setToken] = useState('');
  const [user, setUser] = useState('');
  const check = async (t: string) => {
    // The token is checked before it is kept: a wrong one says so here.
    await api.checkToken(t);
    auth.set(t);
    onSignedIn();
  };
  return (
    <div class="signin">
      <h1>Troupe</h1>
      <p class="muted">Watch and steer your agents live.</p>
      <section class="card">
        <h2>Sign in with a token</h2>
        <Form submit="Sign in" data-testid="token-form" onSubmit={() => check(token.trim())}>
          <Field label="Token" hint="A user token (npm run token -- --user alice) or an agent API key. Kept in this tab only (sessionStorage).">
            <input type="password" autoComplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} data-testid="token-input" autoFocus />
          </Field>
        </Form>
      </section>
      <section class="card">
        <h2>Dev sign-in</h2>
        <p class="muted">Only when the server runs with <code>TROUPE_DEV_LOGIN=1</code> on loopback: mints a user token for any name.</p>
        <Form submit="Dev sign-in" data-testid="dev-form" onSubmit={async () => check((await api.devLogin(user.trim())).token)}>
          <Field label="User name">
            <input required pattern="[A-Za-z0-9][A-Za-z0-9_.@\-]*" value={user} onInput={(e) => setUser(e.currentTarget.value)} data-testid="dev-user" placeholder="alice" />
          </Field>
        </Form>
      </section>
    </div>
  );
}
