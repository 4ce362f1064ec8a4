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
  for (const key of ["password", "pass"]) if (u.searchParams.has(key)) u.searchParams.set(key, "***"); // ioredis reads ?password=
  return u.toString().replace(/%2A%2A%2A/g, "***");
}

/** Whether `url` is a Redis URL fitloop can open (`redis://`, `rediss://`). */
export function isRedisUrl(url: string): boolean {
  return /^rediss?:\/\//i.test(url);
}

/** Removes every occurrence of the URL's password from a message (ioredis' errors may quote the URL). */
export function scrub(message: string, url: string): string {
  const secrets: string[] = [];
  try {
    const u = new URL(url);
    if (u.password) secrets.push(u.password);
    for (const key of ["password", "pass"]) {
      const v = u.searchParams.get(key);
      if (v) secrets.push(v, encodeURIComponent(v));
    }
  } catch {
    return message.split(url).join(redactUrl(url));
  }
  let out = message.split(url).join(redactUrl(url));
  for (const secret of secrets) {
    out = out.split(secret).join("***");
    let decoded = secret;
    try {
      decoded = decodeURIComponent(secret);
    } catch {
      // a stray % in the password: only its raw form can appear
    }
    if (decoded !== secret) out = out.split(decoded).join("***");
  }
  return out;
}
