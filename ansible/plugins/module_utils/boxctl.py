# -*- coding: utf-8 -*-
# Copyright (c) boxctl contributors
# MIT License (see the LICENSE of the boxctl repository)
"""Shared code of the boxctl.boxctl modules.

Everything here is plain Python (standard library only) and never imports
ansible, so the decision logic can be unit-tested without Ansible: the
modules hand in AnsibleModule.run_command as the runner.

boxctl is always called with an argument list, never through a shell, and
only its --json output is parsed; its human output is relayed, never read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import posixpath

try:  # Python 3
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported by boxctl hosts
    from urlparse import urlsplit  # type: ignore

# The archive suffixes boxctl strips to name an image after its file
# (src/images/archive.ts, imageNameFromPath).
IMAGE_SUFFIXES = (
    ".tar.gz", ".tar.xz", ".tar.zst", ".tar.zstd", ".tar.bz2",
    ".tgz", ".txz", ".tzst", ".tbz2", ".tbz", ".tar",
)

USAGE_ERROR = 2


class BoxctlError(Exception):
    """A boxctl call that failed; carries what the module reports."""

    def __init__(self, msg, rc=None, stdout="", stderr="", cmd=None, doc=None):
        super(BoxctlError, self).__init__(msg)
        self.msg = msg
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.cmd = cmd
        self.doc = doc

    def as_result(self):
        r = {"msg": self.msg}
        if self.rc is not None:
            r["rc"] = self.rc
        if self.cmd is not None:
            r["cmd"] = self.cmd
        r["stdout"] = self.stdout
        r["stderr"] = self.stderr
        if self.doc is not None:
            r["boxctl"] = self.doc
        return r


def parse_json(text):
    """The JSON object boxctl printed, or None if stdout holds none."""
    text = (text or "").strip()
    if not text.startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def error_message(doc, stderr, fallback):
    """The reason boxctl gave: its JSON error if any, else its stderr."""
    if doc and isinstance(doc.get("error"), dict) and doc["error"].get("message"):
        msg = doc["error"]["message"]
        if doc["error"].get("hint"):
            msg += " (" + doc["error"]["hint"] + ")"
        return msg
    text = (stderr or "").strip()
    if text:
        lines = text.splitlines()
        return "\n".join(lines[-15:])
    return fallback


def image_name_from_source(src):
    """foo-0.2.tar.gz or https://h/x/foo-0.2.tar?sig=.. gives foo-0.2, as boxctl names it."""
    path = src
    if "://" in src:
        path = urlsplit(src).path
    base = posixpath.basename(path.rstrip("/")) if path else ""
    lower = base.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return base[:-len(suffix)]
    return base


def url_secrets(url):
    """The parts of a URL that must not appear in logs: password, user info, query."""
    secrets = []
    try:
        parts = urlsplit(url)
    except ValueError:
        return secrets
    if parts.password:
        secrets.append(parts.password)
    if "@" in parts.netloc:
        secrets.append(parts.netloc.rsplit("@", 1)[0])
    if parts.query:
        secrets.append(parts.query)
    return [s for s in secrets if s]


def redact_url(url):
    """The URL with user info and query replaced, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "********@" + netloc.rsplit("@", 1)[1]
    out = "%s://%s%s" % (parts.scheme, netloc, parts.path)
    if parts.query:
        out += "?********"
    return out


class Boxctl(object):
    """Runs boxctl. run(argv) -> (rc, stdout, stderr), e.g. AnsibleModule.run_command."""

    def __init__(self, run, executable="boxctl"):
        self._run = run
        self.executable = executable
        # Whether the mutating verbs take --json: unknown until the first try.
        self.mutating_json = None
        self.calls = []

    def run(self, args):
        argv = [self.executable] + list(args)
        rc, out, err = self._run(argv)
        self.calls.append(argv)
        return rc, out, err

    def read(self, args, tolerate_rc=(0,)):
        """A read verb with --json; its document, or BoxctlError."""
        argv = list(args) + ["--json"]
        rc, out, err = self.run(argv)
        doc = parse_json(out)
        if doc is None or rc not in tolerate_rc:
            raise BoxctlError(
                "boxctl %s failed: %s" % (args[0], error_message(doc, err, "exit status %s" % rc)),
                rc=rc, stdout=out, stderr=err, cmd=[self.executable] + argv, doc=doc)
        return doc

    def list(self):
        # Exit 1 with a document: a machine.json that cannot be read; the
        # document still lists every machine, that one with its error.
        return self.read(["list"], tolerate_rc=(0, 1))

    def list_images(self):
        return self.read(["list-images"])

    def status(self, name):
        return self.read(["status", name])

    def machine_status(self, name):
        """status NAME as a dict, or None if boxctl manages no machine NAME."""
        for m in self.list().get("machines", []):
            if m.get("name") == name and m.get("managed"):
                return self.status(name)
        return None

    def mutate(self, args):
        """A mutating verb; (rc, doc or None, argv, stdout, stderr).

        Asks for --json first. A boxctl that does not know --json on this verb
        yet exits 2 (usage) before doing anything, without a JSON document; the
        verb is then run again without it. The module decides from the read
        verbs and the exit status; the JSON, when present, is extra detail.
        """
        if self.mutating_json is not False:
            argv = list(args) + ["--json"]
            rc, out, err = self.run(argv)
            doc = parse_json(out)
            if doc is not None or rc != USAGE_ERROR:
                if doc is not None:
                    self.mutating_json = True
                return rc, doc, [self.executable] + argv, out, err
            self.mutating_json = False
        argv = list(args)
        rc, out, err = self.run(argv)
        return rc, None, [self.executable] + argv, out, err


# ---------------------------------------------------------------- images

def find_image(list_images_doc, name):
    for img in list_images_doc.get("images", []):
        if img.get("name") == name:
            return img
    return None


def plan_image(existing, state, name, sha256=None, source_sha256=None):
    """What boxctl_image has to do: (action, error).

    action is None (nothing), "stage" or "delete"; error a message or None.
    existing is the image's entry in list-images --json, or None. sha256 is
    the expected digest (given by the user); source_sha256 is the digest of
    a local source file when the user gave none.
    """
    want = (sha256 or source_sha256 or "").lower() or None
    if state == "absent":
        if existing is None:
            return None, None
        users = existing.get("usedBy") or []
        if users:
            desc = ", ".join("%s gen %s (%s)" % (u.get("machine"), u.get("gen"), u.get("role")) for u in users)
            return None, "image %s is used by %s; delete those instances first" % (name, desc)
        return "delete", None
    if existing is None:
        return "stage", None
    have = (existing.get("sha256") or "").lower()
    if want and have and want != have:
        return None, ("image %s is already staged with sha256 %s, not %s; an image name stays "
                      "bound to its content: stage the new archive under a new name, or delete "
                      "the old image (state=absent) first" % (name, have, want))
    return None, None


def image_view(img):
    if img is None:
        return None
    return {"name": img.get("name"), "sha256": img.get("sha256"), "source": img.get("source")}


def render_image(img):
    if img is None:
        return "image: absent\n"
    return "image: %s\nsha256: %s\n" % (img.get("name"), img.get("sha256"))


# ---------------------------------------------------------------- machines

def machine_view(status):
    """The parts of status --json the decisions use; None for no machine."""
    if status is None:
        return None
    cur = status.get("current") or None
    fb = status.get("fallback") or None
    return {
        "image": cur.get("image") if cur else None,
        "gen": cur.get("gen") if cur else None,
        "fallback_image": fb.get("image") if fb else None,
        "fallback_gen": fb.get("gen") if fb else None,
        "running": status.get("state") == "running",
        "state": status.get("state"),
        "enabled": bool(status.get("enabled")),
    }


def plan_machine(view, state, image=None, from_image=None, enabled=None, started=None):
    """What boxctl_machine has to do.

    Returns a dict: switch (None, "cutover" or "fallback"), enable (None,
    True or False), power (None, "start" or "poweroff"), delete (state=absent:
    boxctl delete-machine, after the poweroff if it runs), predicted (the
    machine_view expected afterwards; None for absent), error (message or None).
    """
    plan = {"switch": None, "enable": None, "power": None, "delete": False, "predicted": None,
            "error": None}
    if state == "absent":
        if enabled is not None or started is not None:
            plan["error"] = "state=absent takes neither enabled nor started"
        elif view is not None:
            plan["delete"] = True
            plan["power"] = "poweroff" if view["running"] else None
        return plan
    after = dict(view) if view else {
        "image": None, "gen": None, "fallback_image": None, "fallback_gen": None,
        "running": False, "state": "absent", "enabled": False,
    }
    if state == "current":
        if not image:
            plan["error"] = "state=current needs image"
            return plan
        if view is None or view["image"] != image:
            plan["switch"] = "cutover"
            after["fallback_image"], after["fallback_gen"] = after["image"], after["gen"]
            after["image"], after["gen"] = image, None
            after["running"], after["state"] = True, "running"
    elif state == "fallback":
        if view is None:
            plan["error"] = "boxctl manages no machine of that name: nothing to fall back from"
            return plan
        if from_image is not None and view["image"] != from_image:
            pass  # already away from from_image: nothing to do
        elif not view["fallback_image"]:
            plan["error"] = "the machine has no fallback instance (current: %s)" % (view["image"],)
            return plan
        elif from_image is not None and view["fallback_image"] == from_image:
            plan["error"] = ("the fallback instance runs %s too: falling back would not leave it"
                             % from_image)
            return plan
        else:
            plan["switch"] = "fallback"
            after["image"], after["fallback_image"] = view["fallback_image"], view["image"]
            after["gen"], after["fallback_gen"] = view["fallback_gen"], view["gen"]
            after["running"], after["state"] = True, "running"
    else:
        plan["error"] = "unknown state %r" % (state,)
        return plan
    if enabled is not None and after["enabled"] != enabled:
        plan["enable"] = enabled
        after["enabled"] = enabled
    if started is True and not after["running"]:
        plan["power"] = "start"
        after["running"], after["state"] = True, "running"
    elif started is False and after["running"]:
        plan["power"] = "poweroff"
        after["running"], after["state"] = False, "stopped"
    plan["predicted"] = after
    return plan


def plan_changes(plan):
    return bool(plan["switch"] or plan["enable"] is not None or plan["power"] or plan["delete"])


def render_machine(view, name):
    """A short text for --diff: what the operator cares about."""
    if view is None:
        return "machine: %s\nstate: absent\n" % name
    gen = view.get("gen")
    cur = "%s (gen %s)" % (view["image"], gen) if view["image"] and gen else (view["image"] or "none")
    fb = view.get("fallback_image") or "none"
    if view.get("fallback_image") and view.get("fallback_gen"):
        fb = "%s (gen %s)" % (view["fallback_image"], view["fallback_gen"])
    return "machine: %s\nimage: %s\nfallback: %s\nstate: %s\nenabled: %s\n" % (
        name, cur, fb, view.get("state"), str(view.get("enabled")).lower())
