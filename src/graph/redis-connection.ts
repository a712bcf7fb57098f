/**
 * Redis connections for remote devices (remote-device.ts) and the scale-out commands (src/scale). `redis://[user:password@]host[:port][/db]`.
 * `maxRetriesPerRequest: null`: while Redis is away (a restart) commands wait for the reconnect
 * instead of failing, which BullMQ's workers require and which lets a sweep ride out a restart.
 */
import { Redis } from 'ioredis';

export const KEY_PREFIX = 'stella';

/** Connection options both ioredis and BullMQ take. */
export interface RedisConnectionOptions { host: string; port: number; db: number; username?: string; password?: string; maxRetriesPerRequest: null }

export function redisOptions(url: string): RedisConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--redis '${url}': not a URL (expected redis://host:port)`);
  }
  if (u.protocol !== 'redis:') throw new Error(`--redis '${url}': expected a redis:// URL`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`--redis '${url}': database '${u.pathname.slice(1)}' is not a number`);
  return {
    host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379, db,
    username: u.username || undefined, password: u.password ? decodeURIComponent(u.password) : undefined,
    maxRetriesPerRequest: null,
  };
}

export function openRedis(url: string): Redis {
  const client = new Redis(redisOptions(url));
  // Errors while reconnecting are expected during a restart; commands wait for the reconnect.
  client.on('error', () => {});
  return client;
}
