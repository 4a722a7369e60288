# -*- coding: utf-8 -*-
"""The boxctl.boxctl modules run end to end, in a subprocess as Ansible
runs them, against a fake boxctl (fake_boxctl.py, a small state machine in
a JSON file), and their DOCUMENTATION against their argument_spec; skipped
where ansible-core is not installed. The decision logic alone is tested in
test_boxctl.py.

    python3 -m unittest discover -s ansible/tests/unit -v
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


def ansible_available():
    try:
        import ansible.module_utils.basic  # noqa: F401
    except ImportError:
        return False
    return True


@unittest.skipUnless(ansible_available(), "ansible-core is not installed")
class TestModulesWithFakeBoxctl(unittest.TestCase):
    """Runs each module as Ansible does (JSON args on stdin) against fake_boxctl.py."""

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

    def test_machine_cutover_then_idempotent(self):
        st = self.read_state()
        st["images"]["foo-0.2"] = {"sha256": "2" * 64}
        self.write_state(st)
        r = self.run_module("boxctl_machine", {"name": "system1", "image": "foo-0.2", "check": "true",
                                               "timeout": 30}, diff=True)
        self.assertFalse(r.get("failed"), r)
        self.assertTrue(r["changed"])
        self.assertEqual(r["image"], "foo-0.2")
        self.assertIn("+image: foo-0.2 (gen 2)", "\n".join("+" + l for l in r["diff"]["after"].splitlines()))
        muts = self.mutating_calls()
        # --json first (refused, exit 2), then the same without it.
        self.assertEqual(muts[-1], ["cutover-instance", "system1", "foo-0.2", "--timeout", "30", "--check", "true"])
        self.assertEqual(muts[-2][-1], "--json")
        r = self.run_module("boxctl_machine", {"name": "system1", "image": "foo-0.2"})
        self.assertFalse(r["changed"], r)

    def test_machine_carry_and_keep_before_the_cutover_then_idempotent(self):
        st = self.read_state()
        st["images"]["foo-0.2"] = {"sha256": "2" * 64}
        st["json_mutating"] = True
        self.write_state(st)
        args = {"name": "system1", "image": "foo-0.2", "carry": "identity,etc,/srv/app", "keep": "2"}
        r = self.run_module("boxctl_machine", args, check=True, diff=True)
        self.assertTrue(r["changed"], r)
        self.assertEqual(self.mutating_calls(), [])
        self.assertEqual([c[1:2] for c in r["commands"]], [["set-carry"], ["set-keep"], ["cutover-instance"]])
        self.assertIn("carry: identity,etc,/srv/app\nkeep: 2\n", r["diff"]["after"])
        r = self.run_module("boxctl_machine", args)
        self.assertFalse(r.get("failed"), r)
        # The policy is set first, so that this cutover carries by it.
        self.assertEqual(self.mutating_calls(), [
            ["set-carry", "system1", "identity,etc,/srv/app", "--json"],
            ["set-keep", "system1", "2", "--json"],
            ["cutover-instance", "system1", "foo-0.2", "--json"]])
        self.assertEqual(r["status"]["carry"], {"identity": True, "etc": True, "paths": ["/srv/app"]})
        self.assertEqual(r["status"]["keep"], 2)
        r = self.run_module("boxctl_machine", dict(args, carry="identity, etc, /srv/app/"))
        self.assertFalse(r["changed"], r)

    def test_machine_new_gets_its_carry_after_its_first_cutover(self):
        r = self.run_module("boxctl_machine", {"name": "web1", "image": "foo-0.1", "carry": "etc",
                                               "wait": True})
        self.assertFalse(r.get("failed"), r)
        verbs = [c[0] for c in self.mutating_calls() if c[-1] != "--json"]
        self.assertEqual(verbs[0], "cutover-instance")
        # This boxctl refused --json on cutover-instance, so the module asks for it no more.
        self.assertEqual(self.mutating_calls()[-1], ["set-carry", "web1", "etc", "--wait"])
        self.assertEqual(r["status"]["carry"], {"identity": False, "etc": True, "paths": []})

    def test_machine_services_then_idempotent(self):
        st = self.read_state()
        st["json_mutating"] = True
        self.write_state(st)
        args = {"name": "system1", "image": "foo-0.1", "services": ["nginx", "postgresql"], "wait": True,
                "enabled": True}
        r = self.run_module("boxctl_machine", args, diff=True)
        self.assertFalse(r.get("failed"), r)
        self.assertTrue(r["changed"])
        # wait: every command that takes the machine's lock queues (--wait).
        self.assertEqual(self.mutating_calls(), [["set-services", "system1", "nginx", "postgresql", "--wait", "--json"],
                                                 ["enable", "system1", "--wait"]])
        self.assertIn("services: nginx, postgresql", r["diff"]["after"])
        self.assertEqual(r["status"]["services"], ["nginx", "postgresql"])
        self.assertFalse(self.run_module("boxctl_machine", args)["changed"])

    def test_machine_private_users_cut_over_to_the_same_image_then_idempotent(self):
        st = self.read_state()
        st["json_mutating"] = True
        self.write_state(st)
        args = {"name": "system1", "image": "foo-0.1", "private_users": False}
        r = self.run_module("boxctl_machine", args, diff=True)
        self.assertFalse(r.get("failed"), r)
        self.assertEqual((r["changed"], r["switched"]), (True, "cutover"))
        self.assertEqual(self.mutating_calls(), [["cutover-instance", "system1", "foo-0.1", "--private-users", "no",
                                                  "--json"]])
        self.assertIn("private users: true", r["diff"]["before"])
        self.assertIn("private users: false", r["diff"]["after"])
        self.assertEqual((r["status"]["privateUsers"], r["status"]["nextPrivateUsers"]), (None, False))
        self.assertFalse(self.run_module("boxctl_machine", args)["changed"])
        # Omitted, it stays as it is, and a later cutover keeps the machine's choice.
        st = self.read_state()
        st["images"]["foo-0.2"] = {"sha256": "2" * 64}
        self.write_state(st)
        r = self.run_module("boxctl_machine", {"name": "system1", "image": "foo-0.2"})
        self.assertEqual(self.mutating_calls()[-1], ["cutover-instance", "system1", "foo-0.2", "--json"])
        self.assertIsNone(r["status"]["privateUsers"])

    def test_machine_bad_keep_fails_with_boxctls_word_before_any_cutover(self):
        st = self.read_state()
        st["images"]["foo-0.2"] = {"sha256": "2" * 64}
        st["json_mutating"] = True
        self.write_state(st)
        r = self.run_module("boxctl_machine", {"name": "system1", "image": "foo-0.2", "keep": "some"})
        self.assertTrue(r.get("failed"), r)
        self.assertIn("set-keep failed", r["msg"])
        self.assertIn("'some' is not a number or off", r["msg"])
        self.assertNotIn("cutover-instance", [c[0] for c in self.mutating_calls()])

    def test_machine_absent_powers_off_deletes_then_is_idempotent(self):
        st = self.read_state()
        st["json_mutating"] = True
        self.write_state(st)
        r = self.run_module("boxctl_machine", {"name": "system1", "state": "absent"}, check=True, diff=True)
        self.assertTrue(r["changed"], r)
        self.assertEqual(self.mutating_calls(), [])
        r = self.run_module("boxctl_machine", {"name": "system1", "state": "absent"}, diff=True)
        self.assertFalse(r.get("failed"), r)
        self.assertTrue(r["changed"])
        self.assertIsNone(r["image"])
        self.assertIn("state: absent", r["diff"]["after"])
        self.assertEqual(self.mutating_calls(), [["poweroff", "system1"],
                                                 ["delete-machine", "system1", "--yes", "--json"]])
        self.assertNotIn("system1", self.read_state()["machines"])
        r = self.run_module("boxctl_machine", {"name": "system1", "state": "absent"})
        self.assertFalse(r["changed"], r)

    def test_machine_check_mode_changes_nothing(self):
        before = self.read_state()
        r = self.run_module("boxctl_machine", {"name": "system1", "image": "foo-0.2"}, check=True, diff=True)
        self.assertTrue(r["changed"])
        self.assertIn("foo-0.2", r["diff"]["after"])
        self.assertEqual(self.mutating_calls(), [])
        self.assertEqual(self.read_state(), before)

    def test_machine_failed_check_reports_rolled_back(self):
        st = self.read_state()
        st["images"]["foo-0.2"] = {"sha256": "2" * 64}
        st["fail_check"] = ["foo-0.2"]
        st["json_mutating"] = True
        self.write_state(st)
        r = self.run_module("boxctl_machine", {"name": "system1", "image": "foo-0.2", "check": "false"})
        self.assertTrue(r.get("failed"), r)
        self.assertTrue(r["rolled_back"])
        self.assertEqual(r["image"], "foo-0.1")
        self.assertEqual(r["result"]["result"], "rolled-back")
        # The cause first (boxctl's JSON cause), then where that left the machine.
        self.assertIn("cutover to foo-0.2 failed (boxctl exit 1): --check 'false' failed inside system1 (exit 1)"
                      " (try it by hand: boxctl login system1); boxctl went back to foo-0.1 (gen 1)", r["msg"])
        self.assertIn("boxctl said: cutover-instance system1 failed; system1 is running on instance 1", r["msg"])

    def test_machine_failed_first_cutover_says_it_is_left_stopped(self):
        st = self.read_state()
        st["fail_check"] = ["foo-0.1"]
        st["json_mutating"] = True
        self.write_state(st)
        r = self.run_module("boxctl_machine", {"name": "web", "image": "foo-0.1", "check": "false"})
        self.assertTrue(r.get("failed"), r)
        self.assertTrue(r["rolled_back"], r)
        self.assertIn("web: cutover to foo-0.1 failed (boxctl exit 1): --check 'false' failed inside web", r["msg"])
        self.assertIn("web had no instance to go back to and is left stopped", r["msg"])
        self.assertNotIn("None", r["msg"])

    def test_machine_rolled_back_without_json_is_read_from_status(self):
        st = self.read_state()
        st["images"]["foo-0.2"] = {"sha256": "2" * 64}
        st["fail_check"] = ["foo-0.2"]
        self.write_state(st)
        r = self.run_module("boxctl_machine", {"name": "system1", "image": "foo-0.2", "check": "false"})
        self.assertTrue(r.get("failed"), r)
        self.assertTrue(r["rolled_back"], r)
        self.assertNotIn("result", r)
        self.assertIn("cutover to foo-0.2 failed (boxctl exit 1); boxctl went back to foo-0.1 (gen 1)", r["msg"])

    def test_machine_busy_is_not_a_rollback(self):
        st = self.read_state()
        st["images"]["foo-0.2"] = {"sha256": "2" * 64}
        st["busy"] = ["system1"]
        self.write_state(st)
        r = self.run_module("boxctl_machine", {"name": "system1", "image": "foo-0.2"})
        self.assertTrue(r.get("failed"), r)
        self.assertFalse(r["rolled_back"], r)
        self.assertIn("is busy", r["msg"])

    def test_fallback_from_image(self):
        st = self.read_state()
        st["machines"]["system1"]["instances"].append({"gen": 2, "image": "foo-0.2"})
        st["machines"]["system1"].update(current=2, fallback=1)
        self.write_state(st)
        args = {"name": "system1", "state": "fallback", "from_image": "foo-0.2", "wait": True}
        r = self.run_module("boxctl_machine", args)
        self.assertTrue(r["changed"], r)
        self.assertEqual(r["image"], "foo-0.1")
        self.assertEqual(self.mutating_calls()[-1], ["fallback-instance", "system1", "--wait"])
        r = self.run_module("boxctl_machine", args)
        self.assertFalse(r["changed"], r)

    def test_image_stage_check_mode_and_idempotence(self):
        src = os.path.join(self.tmp, "foo-0.2.tar")
        with open(src, "wb") as f:
            f.write(b"fake tarball")
        r = self.run_module("boxctl_image", {"path": src}, check=True)
        self.assertTrue(r["changed"])
        self.assertEqual(self.mutating_calls(), [])
        r = self.run_module("boxctl_image", {"path": src})
        self.assertTrue(r["changed"], r)
        self.assertEqual(r["image"]["name"], "foo-0.2")
        r = self.run_module("boxctl_image", {"path": src})
        self.assertFalse(r["changed"], r)
        with open(src, "wb") as f:
            f.write(b"another tarball")
        r = self.run_module("boxctl_image", {"path": src})
        self.assertTrue(r.get("failed"), r)
        self.assertIn("already staged with sha256", r["msg"])

    def test_image_stage_passes_on_boxctl_warnings(self):
        st = self.read_state()
        st["stage_warning"] = True
        self.write_state(st)
        src = os.path.join(self.tmp, "nosd-1.0.tar")
        with open(src, "wb") as f:
            f.write(b"fake tarball")
        r = self.run_module("boxctl_image", {"path": src})
        self.assertTrue(r["changed"], r)
        self.assertEqual(r.get("warnings"), ["boxctl: nosd-1.0 cannot boot as a boxctl container, so cutover-instance "
                                             "will refuse it: it has no systemd (hint: install systemd in the image)"])

    def test_image_url_hides_credentials(self):
        url = "https://bob:s3cret@images.example.com/foo-0.3.tar?token=xyz"
        r = self.run_module("boxctl_image", {"url": url, "sha256": "3" * 64, "timeout": 5})
        self.assertFalse(r.get("failed"), r)
        self.assertTrue(r["changed"])
        self.assertEqual(self.mutating_calls()[-1][:2], ["stage-image", url])
        self.assertEqual(self.mutating_calls()[-1][-2:], ["--timeout", "5"])
        out = json.dumps(r)
        self.assertNotIn("s3cret", out)
        self.assertNotIn("token=xyz", out)

    def test_image_http_needs_sha256(self):
        r = self.run_module("boxctl_image", {"url": "http://h/foo.tar"})
        self.assertTrue(r.get("failed"))
        self.assertIn("needs sha256", r["msg"])

    def test_image_absent_refused_while_used(self):
        r = self.run_module("boxctl_image", {"name": "foo-0.1", "state": "absent"})
        self.assertTrue(r.get("failed"), r)
        self.assertIn("used by system1", r["msg"])

    def test_info(self):
        r = self.run_module("boxctl_info", {"name": ["system1", "nope"]})
        self.assertFalse(r.get("failed"), r)
        self.assertEqual(r["status"]["system1"]["current"]["image"], "foo-0.1")
        self.assertIsNone(r["status"]["nope"])
        self.assertEqual(r["ansible_facts"]["boxctl"]["images"]["images"][0]["name"], "foo-0.1")


class _Captured(Exception):
    pass


@unittest.skipUnless(ansible_available(), "ansible-core is not installed")
class TestDocumentationMatchesArgumentSpec(unittest.TestCase):
    """What ansible-test's validate-modules checks first: DOCUMENTATION == argument_spec."""

    def test_each_module(self):
        import yaml

        tmp = tempfile.mkdtemp(prefix="boxctl-doc-")
        self.addCleanup(shutil.rmtree, tmp)
        ns = os.path.join(tmp, "ansible_collections", "boxctl")
        os.makedirs(ns)
        os.symlink(COLLECTION, os.path.join(ns, "boxctl"))
        sys.path.insert(0, tmp)
        self.addCleanup(sys.path.remove, tmp)
        for name in ("boxctl_image", "boxctl_machine", "boxctl_info"):
            path = os.path.join(COLLECTION, "plugins", "modules", name + ".py")
            spec = importlib.util.spec_from_file_location("doc_" + name, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            captured = {}

            def fake_module(**kwargs):
                captured.update(kwargs)
                raise _Captured()
            mod.AnsibleModule = fake_module
            with self.assertRaises(_Captured):
                mod.main()
            argspec = captured["argument_spec"]
            doc = yaml.safe_load(mod.DOCUMENTATION)
            yaml.safe_load(mod.EXAMPLES)
            yaml.safe_load(mod.RETURN)
            self.assertEqual(doc["module"], name)
            options = doc["options"]
            self.assertEqual(sorted(options), sorted(argspec), name)
            for opt, a in argspec.items():
                d = options[opt]
                where = "%s.%s" % (name, opt)
                self.assertEqual(d.get("type", "str"), a.get("type", "str"), where)
                self.assertEqual(d.get("required", False), a.get("required", False), where)
                self.assertEqual(d.get("default"), a.get("default"), where)
                self.assertEqual(d.get("choices"), a.get("choices"), where)
                self.assertEqual(d.get("elements"), a.get("elements"), where)
                self.assertTrue(d.get("description"), where)


if __name__ == "__main__":
    unittest.main()
