/** Redis URLs as users give them, and as fitloop prints them: never with the password. */

/** `redis://user:secret@host:6379/0` -> `redis://user:***@host:6379/0`; anything unparsable is hidden whole. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "<an unparsable Redis URL>";
  }
  if (u.password) u.password = "***";
  return u.toString();
}

/** Whether `url` is a Redis URL fitloop can open (`redis://`, `rediss://`). */
export function isRedisUrl(url: string): boolean {
  return /^rediss?:\/\//i.test(url);
}

/** Removes every occurrence of the URL's password from a message (ioredis' errors may quote the URL). */
export function scrub(message: string, url: string): string {
  let secret: string | undefined;
  try {
    const u = new URL(url);
    secret = u.password || undefined;
  } catch {
    return message.split(url).join(redactUrl(url));
  }
  let out = message.split(url).join(redactUrl(url));
  if (secret) {
    out = out.split(secret).join("***");
    const decoded = decodeURIComponent(secret);
    if (decoded !== secret) out = out.split(decoded).join("***");
  }
  return out;
}
