// stage-image URL: an http:// or https:// archive, streamed into the same
// checks as a file (pump.ts), never written anywhere first. Every way a
// download can go wrong becomes one clear error on the stream: a status
// other than 200, a refused or dropped connection, a server that stops
// sending, and a body shorter than its Content-Length.
import type { ClientRequest, IncomingMessage } from "node:http";
import { Transform } from "node:stream";
import { BoxError } from "../base/errors.ts";

export const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** The URL as messages show it: without user:password. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return "the URL";
  }
}

/** The image name a URL gives: its last path component, as for a file. */
export function urlPath(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname);
  } catch {
    throw new BoxError(`'${shownUrl(url)}' is not a valid URL`, "give an http:// or https:// URL");
  }
}

export interface Download {
  stream: Transform;
  /** Content-Length, if the server sent one (for the progress line). */
  total: number | undefined;
}

const REDIRECTS = 5;

/**
 * Opens url (following up to 5 redirects) and resolves once the server
 * has answered 200; the body then arrives on stream. timeoutMs bounds the
 * wait for the answer and every silence in the body.
 */
export async function openUrl(url: string, timeoutMs: number): Promise<Download> {
  const shown = shownUrl(url);
  let at = url;
  for (let hop = 0; hop <= REDIRECTS; hop++) {
    const { req, res } = await get(at, shown, timeoutMs);
    const status = res.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
      res.resume();
      at = new URL(res.headers.location, at).toString();
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw new BoxError(
        `${shown}: the server answered ${status} ${res.statusMessage ?? ""}; nothing was staged`.trim(),
        status === 404 ? "check the URL" : "check the URL and the server",
      );
    }
    return body(req, res, shown, timeoutMs);
  }
  throw new BoxError(`${shown}: more than ${REDIRECTS} redirects; nothing was staged`);
}

async function get(
  url: string,
  shown: string,
  timeoutMs: number,
): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  const mod = url.toLowerCase().startsWith("https:")
    ? await import("node:https")
    : await import("node:http");
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { timeout: timeoutMs }, (res) => resolve({ req, res }));
    req.on("timeout", () =>
      req.destroy(
        new BoxError(
          `${shown}: no answer within ${timeoutMs / 1000} s; nothing was staged`,
          "check the server, or raise --timeout",
        ),
      ),
    );
    req.on("error", (e: NodeJS.ErrnoException) => reject(netError(e, shown)));
  });
}

function netError(e: NodeJS.ErrnoException, shown: string): Error {
  if (e instanceof BoxError) return e;
  const why =
    e.code === "ECONNREFUSED"
      ? "the connection was refused"
      : e.code === "ENOTFOUND" || e.code === "EAI_AGAIN"
        ? "the host name does not resolve"
        : e.message;
  return new BoxError(
    `cannot download ${shown}: ${why}; nothing was staged`,
    "check the URL and that the server is up",
  );
}

/** The body, counted: short of Content-Length, cut off, or silent too long is an error. */
function body(
  req: ClientRequest,
  res: IncomingMessage,
  shown: string,
  timeoutMs: number,
): Download {
  const length = Number(res.headers["content-length"]);
  const total = Number.isFinite(length) ? length : undefined;
  let got = 0;
  const cut = (why: string) =>
    new BoxError(`${shown}: ${why}; nothing was staged`, "the download broke off: try again");
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      got += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      done(
        total !== undefined && got < total
          ? cut(`the body ended after ${got} of ${total} bytes`)
          : null,
      );
    },
  });
  // The request's timeout now means a silence in the body.
  req.removeAllListeners("timeout");
  req.on("timeout", () => {
    // The stream first: the request's own death would say "closed" instead.
    stream.destroy(cut(`no data for ${timeoutMs / 1000} s after ${got} bytes`));
    req.destroy();
  });
  res.on("aborted", () => stream.destroy(cut(`the connection closed after ${got} bytes`)));
  res.on("error", (e) =>
    stream.destroy(e instanceof BoxError ? e : cut(`${e.message} after ${got} bytes`)),
  );
  res.pipe(stream);
  return { stream, total };
}
