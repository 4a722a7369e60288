// The three-way merge of /etc, OSTree's rule, as pure decisions. For each
// entry of the old instance's upper dir (what the container changed), seen
// beside the same path in the old image and in the new image: a real
// local change is kept, an entry the kernel only copied up unchanged is
// dropped (the new image's version shows), and where both sides changed
// the same path the local version wins and the new image's is kept beside
// it as PATH.boxctl-new. Entries are compared by signature (type, mode,
// owner, and content, link target or device number); null is "absent".

export type Sig = string | null;

export type LocalKind = "whiteout" | "opaque-dir" | "dir" | "other";

export interface Facts {
  kind: LocalKind;
  /** The local entry's signature (unused for a whiteout). */
  local: Sig;
  oldImage: Sig;
  newImage: Sig;
}

export type Action =
  /** A local change that stays. */
  | { do: "keep"; descend: boolean }
  /** Not a change against the old image: remove it from the new upper dir. */
  | { do: "drop" }
  /** A directory the container did not change: it takes the new image's owner and mode. */
  | { do: "adopt-image-meta"; descend: true }
  /** Both changed: the local version stays; keepNew: the new image's goes to PATH.boxctl-new. */
  | { do: "conflict"; keepNew: boolean; descend: boolean };

export const CONFLICT_SUFFIX = ".boxctl-new";

export const isDirSig = (s: Sig): boolean => s?.startsWith("d:") === true;

/** The signature of an entry: type letter, mode, owner, then what makes its content. */
export function sig(
  type: "f" | "d" | "l" | "c" | "b" | "p" | "s",
  st: { mode: number; uid: number; gid: number; rdev?: number },
  content = "",
): string {
  const dev = type === "c" || type === "b" ? String(st.rdev ?? 0) : "";
  return `${type}:${(st.mode & 0o7777).toString(8)}:${st.uid}:${st.gid}:${dev}${content}`;
}

export function decide(f: Facts): Action {
  const { oldImage: o, newImage: n, local: l } = f;
  // The new image leaves the path as the old one had it, or made it exactly the local version.
  const imageKept = n === o;
  switch (f.kind) {
    case "whiteout":
      // Deleting what the old image did not have is no change against it.
      if (o === null) return { do: "drop" };
      if (n === null || imageKept) return { do: "keep", descend: false };
      return { do: "conflict", keepNew: true, descend: false };
    case "opaque-dir":
      // The container replaced the whole directory: all of it is local.
      if (imageKept || n === l || (isDirSig(o) && isDirSig(n) && n === o))
        return { do: "keep", descend: false };
      return { do: "conflict", keepNew: n !== null && !isDirSig(n), descend: false };
    case "dir":
      if (isDirSig(o)) {
        // Copied up because something below changed; its own metadata may not have.
        if (l === o)
          return isDirSig(n)
            ? { do: "adopt-image-meta", descend: true }
            : { do: "keep", descend: true };
        if (imageKept || n === null || n === l) return { do: "keep", descend: true };
        return { do: "conflict", keepNew: false, descend: true };
      }
      // A directory the old image did not have there: all of it is local.
      if (n === null || imageKept || n === l) return { do: "keep", descend: false };
      return { do: "conflict", keepNew: !isDirSig(n), descend: false };
    case "other":
      if (l === o) return { do: "drop" };
      if (imageKept || n === l) return { do: "keep", descend: false };
      return { do: "conflict", keepNew: n !== null && !isDirSig(n), descend: false };
  }
}
