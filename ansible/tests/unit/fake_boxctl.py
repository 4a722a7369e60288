#!/usr/bin/env python3
"""A fake boxctl for the unit tests: the verbs the modules call, on a JSON state file.

FAKE_BOXCTL_STATE: the state ({images, machines, json_mutating, fail_check});
FAKE_BOXCTL_LOG: every argv is appended to it, one JSON list a line.
Mutating verbs refuse --json with exit 2 unless json_mutating is true, as the
boxctl of today does.
"""

import hashlib
import json
import os
import sys

MUTATING = {"stage-image", "delete-image", "cutover-instance", "fallback-instance", "delete-machine"}


def policy(spec):
    """A carry SPEC as status --json shows the policy; None for a part boxctl refuses."""
    parts = [x.strip() for x in spec.split(",") if x.strip()]
    if parts == ["none"]:
        return {"identity": False, "etc": False, "paths": []}
    if any(x not in ("identity", "etc") and not x.startswith("/") for x in parts):
        return None
    return {"identity": "identity" in parts, "etc": "etc" in parts,
            "paths": [x.rstrip("/") for x in parts if x.startswith("/")]}


def main():
    argv = sys.argv[1:]
    with open(os.environ["FAKE_BOXCTL_LOG"], "a") as f:
        f.write(json.dumps(argv) + "\n")
    path = os.environ["FAKE_BOXCTL_STATE"]
    with open(path) as f:
        st = json.load(f)
    verb, args = argv[0], argv[1:]
    as_json = "--json" in args
    # --wait: nothing else holds a machine here, so it only has to be accepted.
    args = [a for a in args if a not in ("--json", "--wait")]
    if verb in MUTATING and as_json and not st.get("json_mutating"):
        sys.stderr.write("boxctl: unknown option '--json'\n")
        return 2

    def opt(name):
        if name in args:
            i = args.index(name)
            v = args[i + 1]
            del args[i:i + 2]
            return v
        return None

    def save():
        with open(path, "w") as f:
            json.dump(st, f)

    def inst(m, gen):
        for i in m["instances"]:
            if i["gen"] == gen:
                return {"gen": gen, "image": i["image"]}
        return None

    def private(m, gen):
        """An instance's private users: made before any choice (the fixtures' own), yes."""
        return next(i for i in m["instances"] if i["gen"] == gen).get("private", True)

    def used_by(image):
        out = []
        for name, m in sorted(st["machines"].items()):
            for i in m["instances"]:
                if i["image"] == image:
                    role = "current" if i["gen"] == m["current"] else (
                        "fallback" if i["gen"] == m["fallback"] else "other")
                    out.append({"machine": name, "gen": i["gen"], "role": role})
        return out

    def emit(doc, rc=0):
        if as_json:
            sys.stdout.write(json.dumps(doc) + "\n")
        return rc

    if verb == "list":
        return emit({"version": 1, "machines": [
            {"name": n, "managed": True, "state": "running" if m["running"] else "stopped",
             "enabled": m["enabled"], "image": (inst(m, m["current"]) or {}).get("image"),
             "generation": m["current"], "error": None}
            for n, m in sorted(st["machines"].items())]})
    if verb == "list-images":
        return emit({"version": 1, "images": [
            {"version": 1, "name": n, "sha256": i["sha256"], "source": i.get("source", n + ".tar"),
             "os": "Debian", "size": 1, "staged": "2026-01-01T00:00:00.000Z", "usedBy": used_by(n)}
            for n, i in sorted(st["images"].items())], "machines": []})
    if verb == "status":
        m = st["machines"].get(args[0])
        if m is None:
            sys.stderr.write("boxctl: no machine '%s'\n" % args[0])
            return 1
        return emit({"version": 1, "name": args[0], "state": "running" if m["running"] else "stopped",
                     "enabled": m["enabled"], "current": inst(m, m["current"]),
                     "fallback": inst(m, m["fallback"]), "lastOperation": m.get("last"),
                     "carry": policy(m.get("carry", "identity")), "keep": m.get("keep"),
                     "services": m.get("services", []),
                     "privateUsers": {"base": 1879048192, "size": 65536, "sharedWith": []}
                     if m["current"] is not None and private(m, m["current"]) else None,
                     "nextPrivateUsers": m.get("private_users", True)})
    if verb == "set-services":
        m = st["machines"][args[0]]
        units = [u.strip() for a in args[1:] for u in a.split(",") if u.strip()]
        changed = units != m.get("services", [])
        m["services"] = units
        save()
        return emit({"machine": args[0], "changed": changed, "services": units})
    if verb in ("set-carry", "set-keep"):
        m = st["machines"].get(args[0])
        if m is None:
            sys.stderr.write("boxctl: machine '%s' is not managed by boxctl\n" % args[0])
            return 1
        if verb == "set-carry":
            if policy(args[1]) is None:
                sys.stderr.write("boxctl: unknown carry part in '%s'\n" % args[1])
                return 2
            changed = policy(args[1]) != policy(m.get("carry", "identity"))
            m["carry"] = args[1]
            doc = {"machine": args[0], "changed": changed, "carry": args[1]}
        else:
            if args[1] != "off" and not args[1].isdigit():
                sys.stderr.write("boxctl: set-keep: '%s' is not a number or off\n" % args[1])
                return 2
            keep = None if args[1] == "off" else int(args[1])
            changed = keep != m.get("keep")
            m["keep"] = keep
            doc = {"machine": args[0], "changed": changed, "keep": keep}
        save()
        return emit(doc)
    if verb == "stage-image":
        name, sha = opt("--name"), opt("--sha256")
        opt("--timeout")
        src = args[0]
        if "://" not in src:
            with open(src, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if sha and sha != digest:
                sys.stderr.write("boxctl: sha256 mismatch\n")
                return 1
            sha = digest
        if name in st["images"]:
            sys.stderr.write("boxctl: image '%s' is already staged\n" % name)
            return 1
        st["images"][name] = {"sha256": sha, "source": os.path.basename(src.split("?")[0])}
        save()
        if st.get("stage_warning"):
            sys.stderr.write("boxctl: warning: %s cannot boot as a boxctl container, so cutover-instance will "
                             "refuse it: it has no systemd\n  hint: install systemd in the image\n" % name)
        return emit({"version": 1, "verb": verb, "changed": True, "image": {"name": name}, "error": None})
    if verb == "delete-image":
        if used_by(args[0]):
            sys.stderr.write("boxctl: image in use\n")
            return 1
        del st["images"][args[0]]
        save()
        return emit({"version": 1, "verb": verb, "changed": True, "image": args[0], "error": None})
    if verb in ("cutover-instance", "fallback-instance"):
        opt("--timeout")
        check = opt("--check")
        users = opt("--private-users")
        name = args[0]
        if name in st.get("busy", []):
            sys.stderr.write("boxctl: %s is busy: cutover-instance by pid 1\n" % name)
            return 1
        m = st["machines"].setdefault(name, {"instances": [], "current": None, "fallback": None,
                                             "running": False, "enabled": False})
        old_cur, old_fb = m["current"], m["fallback"]
        if verb == "cutover-instance":
            image = args[1]
            if image not in st["images"]:
                sys.stderr.write("boxctl: image '%s' is not staged\n" % image)
                return 1
            gen = max([i["gen"] for i in m["instances"]] or [0]) + 1
            if users is not None:
                m["private_users"] = users == "yes"
            m["instances"].append({"gen": gen, "image": image, "private": m.get("private_users", True)})
        else:
            if old_fb is None:
                sys.stderr.write("boxctl: no fallback\n")
                return 1
            gen = old_fb
            image = inst(m, gen)["image"]
        doc = {"version": 1, "verb": verb, "machine": name, "changed": True,
               "target": {"gen": gen, "image": image}}
        st["clock"] = st.get("clock", 0) + 1
        m["last"] = {"verb": verb, "started": st["clock"], "result": "ok"}
        if check is not None and image in st.get("fail_check", []):
            m["last"]["result"] = "rolled-back"
            m["running"] = old_cur is not None
            save()
            sys.stderr.write("boxctl: --check failed; going back\n")
            # As boxctl does: the error says where the machine stands, the cause what failed.
            where = ("%s is running on instance %s (%s) again" % (name, old_cur, inst(m, old_cur)["image"])
                     if old_cur is not None else "%s is left stopped with no current instance" % name)
            doc.update(result="rolled-back", current=inst(m, old_cur), running=m["running"],
                       step="wait-booted",
                       cause={"message": "--check %r failed inside %s (exit 1)" % (check, name),
                              "hint": "try it by hand: boxctl login %s" % name},
                       error={"message": "%s %s failed; %s" % (verb, name, where),
                              "hint": "instance %s is kept for inspection" % gen})
            return emit(doc, 1)
        m["current"], m["fallback"], m["running"] = gen, old_cur, True
        save()
        doc.update(result="ok", current=inst(m, gen), fallback=inst(m, old_cur), running=True, error=None)
        return emit(doc)
    if verb == "delete-machine":
        name = args[0]
        if st["machines"][name]["running"]:
            sys.stderr.write("boxctl: container %s is running; delete-machine deletes only a stopped machine\n" % name)
            return 1
        if "--yes" not in args:
            sys.stderr.write("boxctl: delete-machine needs confirmation\n")
            return 1
        m = st["machines"].pop(name)
        save()
        return emit({"version": 1, "verb": verb, "changed": True, "machine": name,
                     "instances": m["instances"], "wasEnabled": m["enabled"], "keptMountPoint": False,
                     "error": None})
    if verb in ("enable", "disable"):
        st["machines"][args[0]]["enabled"] = verb == "enable"
        save()
        return 0
    if verb in ("start", "poweroff"):
        st["machines"][args[0]]["running"] = verb == "start"
        save()
        return 0
    sys.stderr.write("fake boxctl: unknown verb %s\n" % verb)
    return 2


if __name__ == "__main__":
    sys.exit(main())
