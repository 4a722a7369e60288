import type { Verb } from "../types.ts";

export const imageVerbs: Verb[] = [
  {
    name: "stage-image",
    group: "image",
    args: [{ name: "PATH", complete: "file" }],
    summary: "Install a new image from a root-filesystem tarball (or - for stdin).",
    details: `Unpacks PATH, a .tar, .tar.gz, .tar.xz, .tar.zst or .tar.bz2 archive of a root
filesystem (recognised by content, not by name), into a read-only image in the store.
The image is named after the file without its archive suffix (foo-0.1.tar.gz gives
foo-0.1) unless --name is given. The file itself is never moved or changed.`,
    options: {
      name: { type: "string", arg: "NAME", help: "Name the image NAME instead of after the file." },
      sha256: { type: "string", arg: "HEX", help: "Refuse the archive unless its sha256 is HEX." },
      force: { type: "boolean", help: "Stage an archive that holds no os-release file." },
      quiet: { type: "boolean", short: "q", help: "Show no progress line." },
    },
    mutates: true,
  },
  {
    name: "list-images",
    group: "image",
    args: [],
    summary: "Show available images, and each machine's current and fallback instance.",
    mutates: false,
    reads: true,
  },
  {
    name: "delete-image",
    group: "image",
    args: [{ name: "IMAGE", complete: "image" }],
    summary: "Delete an image that no instance uses.",
    mutates: true,
  },
];
