# -*- coding: utf-8 -*-
# Copyright (c) boxctl contributors
# MIT License (see the LICENSE of the boxctl repository)
"""Shared code of the boxctl.boxctl modules: running boxctl and reading its answers.
What a module plans from those answers is in boxctl_plan.py.

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
# (src/archive/archive.ts, imageNameFromPath).
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

    def __init__(self, run, executable="boxctl", warn=None):
        self._run = run
        self.executable = executable
        # module.warn: boxctl's own warnings reach the play's output.
        self._warn = warn
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
            self._forward_warnings(err)
            doc = parse_json(out)
            if doc is not None or rc != USAGE_ERROR:
                if doc is not None:
                    self.mutating_json = True
                return rc, doc, [self.executable] + argv, out, err
            self.mutating_json = False
        argv = list(args)
        rc, out, err = self.run(argv)
        self._forward_warnings(err)
        return rc, None, [self.executable] + argv, out, err

    def _forward_warnings(self, err):
        if self._warn:
            for w in warnings_in(err):
                self._warn(w)


def warnings_in(stderr):
    """boxctl's warnings on stderr ("boxctl: warning: ..."), each with its hint line."""
    out = []
    last_was_warning = False
    for line in (stderr or "").splitlines():
        if line.startswith("boxctl: warning: "):
            out.append("boxctl: " + line[len("boxctl: warning: "):])
            last_was_warning = True
        elif last_was_warning and line.startswith("  hint: "):
            out[-1] += " (hint: %s)" % line[len("  hint: "):]
            last_was_warning = False
        else:
            last_was_warning = False
    return out
