/**
 * Where the CLI keeps the API URL and token: `<config dir>/troupe/config.json` (env-paths: XDG
 * on Linux, so XDG_CONFIG_HOME moves it), written with mode 0600. TROUPE_URL, TROUPE_TOKEN and
 * TROUPE_PROJECT override what is stored, for CI and scripts.
 */
import fs from 'node:fs';
import path from 'node:path';
import envPaths from 'env-paths';

export interface StoredConfig { url?: string; token?: string; project?: string }

export function configFile(): string {
  return path.join(envPaths('troupe', { suffix: '' }).config, 'config.json');
}

export function readConfig(): StoredConfig {
  try {
    return JSON.parse(fs.readFileSync(configFile(), 'utf8')) as StoredConfig;
  } catch {
    return {};
  }
}

export function writeConfig(c: StoredConfig): string {
  const file = configFile();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

export function removeConfig(): boolean {
  try {
    fs.unlinkSync(configFile());
    return true;
  } catch {
    return false;
  }
}

/** What a command runs with: flags, then the environment, then the stored config. */
export function resolveConfig(flags: { url?: string; token?: string; project?: string }, env = process.env): StoredConfig & { source: Record<string, string> } {
  const stored = readConfig();
  const source: Record<string, string> = {};
  const pick = (name: keyof StoredConfig, flag: string | undefined, envName: string) => {
    if (flag) return (source[name] = 'flag', flag);
    if (env[envName]) return (source[name] = envName, env[envName]);
    if (stored[name]) return (source[name] = configFile(), stored[name]);
    return undefined;
  };
  return {
    url: pick('url', flags.url, 'TROUPE_URL')?.replace(/\/+$/, ''),
    token: pick('token', flags.token, 'TROUPE_TOKEN'),
    project: pick('project', flags.project, 'TROUPE_PROJECT'),
    source,
  };
}
