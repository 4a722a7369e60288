import { humanBytes } from "../../base/format.ts";
import { deleteImage, listImages } from "../../ops/images.ts";
import { DEFAULT_MAX_SIZE, stageImage } from "../../ops/stage-image.ts";
import { done, emit } from "../output.ts";
import { parseTimeout } from "../parse.ts";
import { renderImages } from "../render/images.ts";
import type { Verb } from "../types.ts";

const str = (x: unknown) => (typeof x === "string" ? x : undefined);

export const imageVerbs: Verb[] = [
  {
    name: "stage-image",
    group: "image",
    args: [{ name: "PATH", complete: "file" }],
    summary: "Install a new image from a root-filesystem tarball, a URL, or - for stdin.",
    details: `Unpacks PATH, a .tar, .tar.gz, .tar.xz, .tar.zst or .tar.bz2 archive of a root
filesystem (recognised by content, not by name), into a read-only image in the store.
The image is named after the file without its archive suffix (foo-0.1.tar.gz gives
foo-0.1) unless --name is given; with PATH - (standard input) --name is required.
The file itself is never moved or changed.

An archive whose top holds etc/os-release or usr/lib/os-release is used as it is; one
whose single top-level directory holds it is used from inside that directory; any
other archive is refused unless --force.

Every tar header is checked before tar sees it: entries with '..' or an absolute
path, entries written through an earlier symlink, hardlinks to anything not earlier
in the archive, and corrupt or truncated archives are refused, naming the entry.
The unpacked stream is bounded by --max-size (default ${DEFAULT_MAX_SIZE}, or the environment
variable BOXCTL_MAX_IMAGE_SIZE), against compression bombs. Ownership (numeric),
modes, hardlinks, devices, ACLs and xattrs (security.capability, SELinux labels)
are kept. Unpacking happens in the store's staging/ directory and the image appears
with one rename, so it is either fully there or absent; Ctrl-C removes the partial
tree at once (exit 130), and a stage that was killed is cleaned up by the next run.

PATH may be an http:// or https:// URL: the archive is streamed through the same checks
as a file, never stored first, with the same progress line. A plain http:// URL needs
--sha256 (anyone on the way could change it). A 404, a refused connection, a server
silent for --timeout seconds, or a body cut short is refused and leaves nothing behind.
Staging an image that is staged already, under the same name and with the --sha256
given, does nothing and says so (exit 0).`,
    options: {
      name: { type: "string", arg: "NAME", help: "Name the image NAME instead of after the file." },
      sha256: {
        type: "string",
        arg: "HEX",
        help: "Refuse the archive unless the file's sha256 is HEX (checked before the image appears).",
      },
      "max-size": {
        type: "string",
        arg: "SIZE",
        help: `Refuse an archive that unpacks to a tar stream over SIZE (default ${DEFAULT_MAX_SIZE}).`,
      },
      force: { type: "boolean", help: "Stage an archive that holds no os-release file." },
      quiet: { type: "boolean", short: "q", help: "Show no progress line and no summary." },
      timeout: {
        type: "string",
        arg: "S",
        help: "For a URL: seconds the server may stay silent before boxctl gives up (default 30).",
      },
    },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const staged = await stageImage(ctx.r, {
        path: ctx.args[0] as string,
        name: str(ctx.opts.name),
        sha256: str(ctx.opts.sha256),
        maxSize: str(ctx.opts["max-size"]),
        force: ctx.opts.force === true,
        quiet: ctx.opts.quiet === true,
        timeoutMs:
          ctx.opts.timeout === undefined
            ? undefined
            : parseTimeout(ctx.opts.timeout, "stage-image"),
      });
      if (!staged || (ctx.opts.quiet === true && !ctx.opts.json)) return 0;
      const { meta, seconds } = staged;
      if (staged.already)
        return done(
          ctx,
          { changed: false, image: meta },
          `${meta.name} is staged already, with sha256 ${meta.sha256}; nothing to do`,
        );
      return done(
        ctx,
        { changed: true, image: meta, shared: staged.shared ?? null },
        `staged ${meta.name}: ${meta.os ?? "no OS release"}, ${humanBytes(meta.size)} in ${seconds.toFixed(1)}s`,
      );
    },
  },
  {
    name: "list-images",
    group: "image",
    args: [],
    summary: "Show available images, and each machine's current and fallback instance.",
    details: `Lists every staged image with its OS (PRETTY_NAME of its os-release), size (the
bytes of its files' data; boxctl df shows the disk it takes, and what it shares), when
it was staged, its sha256 (first 12 digits; all of it with --json) and the machines
whose instances use it; then each machine's current and fallback instance.
The JSON schema is documented in docs/json.md.`,
    mutates: false,
    reads: true,
    run: async (ctx) => {
      const data = listImages();
      emit(
        ctx.opts,
        () => ({ ...data }),
        (legend) => renderImages(data, legend),
      );
      return 0;
    },
  },
  {
    name: "delete-image",
    group: "image",
    args: [{ name: "IMAGE", complete: "image" }],
    summary: "Delete an image that no instance uses.",
    details: `Removes IMAGE from the store. It is refused while any instance of any machine
(current, fallback or kept) is based on IMAGE; the error names them. The image
vanishes with one rename, then its tree is removed. While a cutover is adding an
instance (of any image), delete-image waits for nothing and fails at once ("the image
store is busy"), unless --wait is given.`,
    options: {
      wait: { type: "boolean", help: "If a cutover is running, wait for it to finish." },
    },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      await deleteImage(ctx.r, ctx.args[0] as string, { wait: ctx.opts.wait === true });
      return done(ctx, { changed: true, image: ctx.args[0] }, `deleted image ${ctx.args[0]}`);
    },
  },
];
