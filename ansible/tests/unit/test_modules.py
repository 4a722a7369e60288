# -*- coding: utf-8 -*-
"""boxctl_machine run end to end against a fake boxctl (module_case.py);
skipped where ansible-core is not installed. Its decision logic alone is
tested in test_boxctl.py.

    python3 -m unittest discover -s ansible/tests/unit -v
"""

from __future__ import absolute_import, division, print_function

import unittest

from module_case import ModuleCase, ansible_available


@unittest.skipUnless(ansible_available(), "ansible-core is not installed")
class TestMachineModule(ModuleCase):
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


if __name__ == "__main__":
    unittest.main()
