// Prints a user JWT for local use: npm run token -- --user alice [--expires 30d]
// Every token carries an expiry (the api refuses tokens without `exp`).
const args = process.argv.slice(2);
const at = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const user = at('--user');
if (!user) {
  console.error('usage: npm run token -- --user <name> [--expires 30d]');
  process.exit(2);
}
try {
  const { config } = await import('../src/config.js');
  const { signUserToken } = await import('../src/http/auth.js');
  const token = await signUserToken(user, at('--expires') ?? '30d');
  if (config.jwtSecretIsDevDefault) console.error('(signed with the DEV default TROUPE_JWT_SECRET: accepted only by a server listening on loopback)');
  console.log(token);
  process.exit(0);
} catch (err) {
  // Configuration problems (e.g. HOST beyond loopback without TROUPE_JWT_SECRET) print as they are.
  console.error((err as Error).name === 'ConfigError' ? (err as Error).message : err);
  process.exit(1);
}
