// Prints a user JWT for local use: npm run token -- --user alice [--expires 30d]
import { signUserToken } from '../src/http/auth.js';
import { config } from '../src/config.js';

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
const token = await signUserToken(user, at('--expires') ?? '30d');
if (config.jwtSecretIsDevDefault) console.error('(signed with the DEV default TROUPE_JWT_SECRET)');
console.log(token);
process.exit(0);
