# -*- coding: utf-8 -*-
"""What the module tests share: load_utils, a module_utils file without
Ansible; the collection on the import path as
ansible_collections.boxctl.boxctl, and ModuleCase, which runs a module in a
subprocess as Ansible runs it (JSON args on stdin) against fake_boxctl.py, a
small state machine in a JSON file.
"""

from __future__ import absolute_import, division, print_function

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION = os.path.abspath(os.path.join(HERE, "..", ".."))


def load_utils(name):
    """A module_utils file of the collection, loaded without Ansible (its decision logic is plain python)."""
    path = os.path.join(COLLECTION, "plugins", "module_utils", name + ".py")
    spec = importlib.util.spec_from_file_location(name + "_utils", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ansible_available():
    try:
        import ansible.module_utils.basic  # noqa: F401
    except ImportError:
        return False
    return True


class ModuleCase(unittest.TestCase):
    """Runs each module as Ansible does (JSON args on stdin) against fake_boxctl.py;
    every test starts with system1 running on foo-0.1, gen 1."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="boxctl-unit-")
        # The collection importable as ansible_collections.boxctl.boxctl.
        ns = os.path.join(self.tmp, "ansible_collections", "boxctl")
        os.makedirs(ns)
        os.symlink(COLLECTION, os.path.join(ns, "boxctl"))
        self.state = os.path.join(self.tmp, "state.json")
        self.log = os.path.join(self.tmp, "calls.log")
        self.fake = os.path.join(self.tmp, "boxctl")
        shutil.copy(os.path.join(HERE, "fake_boxctl.py"), self.fake)
        os.chmod(self.fake, os.stat(self.fake).st_mode | stat.S_IXUSR)
        self.write_state({
            "json_mutating": False,
            "images": {"foo-0.1": {"sha256": "1" * 64}},
            "machines": {"system1": {"instances": [{"gen": 1, "image": "foo-0.1"}], "current": 1,
                                      "fallback": None, "running": True, "enabled": False}},
            "fail_check": [],
        })

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write_state(self, state):
        with open(self.state, "w") as f:
            json.dump(state, f)

    def read_state(self):
        with open(self.state) as f:
            return json.load(f)

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def mutating_calls(self):
        reads = {"list", "list-images", "status"}
        return [c for c in self.calls() if c[0] not in reads]

    def run_module(self, name, args, check=False, diff=False):
        args = dict(args, executable=self.fake, _ansible_check_mode=check, _ansible_diff=diff,
                    _ansible_tmpdir=self.tmp, _ansible_remote_tmp=self.tmp, _ansible_keep_remote_files=False)
        path = os.path.join(COLLECTION, "plugins", "modules", name + ".py")
        env = dict(os.environ, PYTHONPATH=self.tmp + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   FAKE_BOXCTL_STATE=self.state, FAKE_BOXCTL_LOG=self.log)
        p = subprocess.run([sys.executable, path], input=json.dumps({"ANSIBLE_MODULE_ARGS": args}),
                           capture_output=True, text=True, env=env)
        try:
            return json.loads(p.stdout)
        except ValueError:
            self.fail("module printed no JSON: %s %s" % (p.stdout, p.stderr))
