# -*- coding: utf-8 -*-
"""Unit tests of the boxctl.boxctl modules' decision logic
(plugins/module_utils/boxctl*.py), without Ansible; the modules themselves
are run end to end in test_modules.py.

    python3 -m unittest discover -s ansible/tests/unit -v
"""

from __future__ import absolute_import, division, print_function

import json
import unittest

from module_case import load_utils

U = load_utils("boxctl")
P = load_utils("boxctl_plan")


def view(image="foo-0.1", gen=1, fb=None, fb_gen=None, running=True, enabled=False,
         carry="identity", keep="off", private_users=True, next_private_users=True):
    return {"image": image, "gen": gen, "fallback_image": fb, "fallback_gen": fb_gen,
            "running": running, "state": "running" if running else "stopped", "enabled": enabled,
            "carry": carry, "keep": keep, "private_users": private_users,
            "next_private_users": next_private_users}


class TestNames(unittest.TestCase):
    def test_image_name_from_source(self):
        self.assertEqual(U.image_name_from_source("/srv/images/foo-0.2.tar"), "foo-0.2")
        self.assertEqual(U.image_name_from_source("foo-0.2.tar.zst"), "foo-0.2")
        self.assertEqual(U.image_name_from_source("foo.TGZ"), "foo")
        self.assertEqual(U.image_name_from_source("https://u:p@h/x/foo-0.2.tar.gz?sig=abc"), "foo-0.2")
        self.assertEqual(U.image_name_from_source("/srv/plain"), "plain")
        self.assertEqual(U.image_name_from_source(".tar"), ".tar")

    def test_url_secrets_and_redaction(self):
        url = "https://bob:s3cret@images.example.com/foo-0.2.tar?token=xyz"
        secrets = U.url_secrets(url)
        self.assertIn("s3cret", secrets)
        self.assertIn("bob:s3cret", secrets)
        self.assertIn("token=xyz", secrets)
        red = U.redact_url(url)
        self.assertNotIn("s3cret", red)
        self.assertNotIn("xyz", red)
        self.assertEqual(U.url_secrets("https://images.example.com/foo.tar"), [])


class TestBoxctlRunner(unittest.TestCase):
    def test_mutate_falls_back_without_json_on_usage_error(self):
        calls = []

        def run(argv):
            calls.append(argv)
            if "--json" in argv:
                return 2, "", "boxctl: unknown option '--json'\n"
            return 0, "", ""
        bx = U.Boxctl(run, "boxctl")
        rc, doc, cmd, _out, _err = bx.mutate(["cutover-instance", "m", "img"])
        self.assertEqual((rc, doc), (0, None))
        self.assertEqual(cmd, ["boxctl", "cutover-instance", "m", "img"])
        self.assertFalse(bx.mutating_json)
        bx.mutate(["fallback-instance", "m"])  # no second try with --json
        self.assertEqual(calls[-1], ["boxctl", "fallback-instance", "m"])
        self.assertEqual(len(calls), 3)

    def test_mutate_keeps_json_result_of_a_failure(self):
        doc = {"version": 1, "result": "rolled-back", "error": {"message": "check failed", "hint": None}}

        def run(argv):
            return 1, json.dumps(doc), "boxctl: check failed\n"
        bx = U.Boxctl(run)
        rc, got, _cmd, _out, err = bx.mutate(["cutover-instance", "m", "img"])
        self.assertEqual(rc, 1)
        self.assertEqual(got["result"], "rolled-back")
        self.assertEqual(U.error_message(got, err, "x"), "check failed")

    def test_warnings_in_stderr(self):
        err = ("boxctl: note: x carries a machine ID\n"
               "boxctl: warning: x cannot boot\n  hint: install systemd\n"
               "boxctl: failed\n  hint: not a warning's\n"
               "boxctl: warning: low on inotify\n")
        self.assertEqual(U.warnings_in(err), ["boxctl: x cannot boot (hint: install systemd)",
                                              "boxctl: low on inotify"])
        self.assertEqual(U.warnings_in(None), [])

    def test_read_fails_without_json(self):
        bx = U.Boxctl(lambda argv: (1, "", "boxctl: no machine 'x'\n"))
        with self.assertRaises(U.BoxctlError) as ctx:
            bx.status("x")
        self.assertIn("no machine 'x'", ctx.exception.msg)

    def test_list_tolerates_exit_1_with_a_document(self):
        listing = {"version": 1, "machines": [{"name": "a", "managed": True, "error": "bad"}]}
        bx = U.Boxctl(lambda argv: (1, json.dumps(listing), "boxctl: bad machine.json\n"))
        self.assertEqual(bx.list()["machines"][0]["name"], "a")

    def test_machine_status_of_unknown_machine_is_none(self):
        listing = {"version": 1, "machines": [{"name": "other", "managed": False}]}
        bx = U.Boxctl(lambda argv: (0, json.dumps(listing), ""))
        self.assertIsNone(bx.machine_status("other"))
        self.assertIsNone(bx.machine_status("system1"))


class TestPlanMachine(unittest.TestCase):
    def test_cutover_when_on_another_image(self):
        p = P.plan_machine(view(), "current", image="foo-0.2")
        self.assertEqual(p["switch"], "cutover")
        self.assertEqual(p["predicted"]["image"], "foo-0.2")
        self.assertEqual(p["predicted"]["fallback_image"], "foo-0.1")
        self.assertTrue(P.plan_changes(p))

    def test_cutover_creates_a_new_machine(self):
        p = P.plan_machine(None, "current", image="foo-0.1")
        self.assertEqual(p["switch"], "cutover")
        self.assertIsNone(p["predicted"]["fallback_image"])

    def test_idempotent_when_current(self):
        p = P.plan_machine(view(image="foo-0.2"), "current", image="foo-0.2")
        self.assertFalse(P.plan_changes(p))

    def test_enabled_and_started(self):
        p = P.plan_machine(view(image="foo-0.2", running=False), "current", image="foo-0.2",
                           enabled=True, started=True)
        self.assertEqual((p["switch"], p["enable"], p["power"]), (None, True, "start"))
        # A cutover starts the machine already.
        p = P.plan_machine(view(running=False), "current", image="foo-0.2", started=True)
        self.assertEqual((p["switch"], p["power"]), ("cutover", None))
        p = P.plan_machine(view(image="foo-0.2"), "current", image="foo-0.2", started=False, enabled=False)
        self.assertEqual((p["enable"], p["power"]), (None, "poweroff"))

    def test_fallback_from_image_is_idempotent(self):
        on_new = view(image="foo-0.2", gen=2, fb="foo-0.1", fb_gen=1)
        p = P.plan_machine(on_new, "fallback", from_image="foo-0.2")
        self.assertEqual(p["switch"], "fallback")
        self.assertEqual(p["predicted"]["image"], "foo-0.1")
        self.assertEqual(p["predicted"]["fallback_image"], "foo-0.2")
        back = view(image="foo-0.1", gen=1, fb="foo-0.2", fb_gen=2)
        p = P.plan_machine(back, "fallback", from_image="foo-0.2")
        self.assertFalse(P.plan_changes(p))
        self.assertIsNone(p["error"])

    def test_absent_powers_off_then_deletes(self):
        p = P.plan_machine(view(), "absent")
        self.assertEqual((p["delete"], p["power"], p["predicted"]), (True, "poweroff", None))
        self.assertTrue(P.plan_changes(p))
        p = P.plan_machine(view(running=False), "absent")
        self.assertEqual((p["delete"], p["power"]), (True, None))
        p = P.plan_machine(None, "absent")
        self.assertFalse(P.plan_changes(p))
        self.assertIsNone(p["error"])
        self.assertIn("none of enabled, started", P.plan_machine(view(), "absent", started=False)["error"])
        self.assertIn("carry, keep, services", P.plan_machine(view(), "absent", keep="2")["error"])

    def test_fallback_errors(self):
        self.assertIn("no machine", P.plan_machine(None, "fallback")["error"])
        self.assertIn("no fallback", P.plan_machine(view(), "fallback")["error"])
        both = view(image="foo-0.2", gen=3, fb="foo-0.2", fb_gen=2)
        self.assertIn("runs foo-0.2 too", P.plan_machine(both, "fallback", from_image="foo-0.2")["error"])
        # Without from_image, a fallback always happens (it swaps).
        p = P.plan_machine(view(image="foo-0.1", fb="foo-0.2", fb_gen=2), "fallback")
        self.assertEqual(p["switch"], "fallback")

    def test_carry_and_keep_are_set_only_where_they_differ(self):
        p = P.plan_machine(view(), "current", image="foo-0.2", carry="identity,etc", keep="3")
        self.assertEqual(p["settings"], [["set-carry", "identity,etc"], ["set-keep", "3"]])
        self.assertEqual((p["predicted"]["carry"], p["predicted"]["keep"]), ("identity,etc", "3"))
        self.assertEqual(p["switch"], "cutover")
        # As boxctl stores them: spaces, a trailing slash, a path inside another, off in capitals.
        same = view(image="foo-0.2", carry="identity,etc,/var/lib/app", keep="off")
        p = P.plan_machine(same, "current", image="foo-0.2", carry=" identity, etc,/var/lib/app/,/var/lib/app/db",
                           keep="OFF")
        self.assertEqual(p["settings"], [])
        self.assertFalse(P.plan_changes(p))
        # A setting alone is a change.
        p = P.plan_machine(view(image="foo-0.2"), "current", image="foo-0.2", carry="none")
        self.assertEqual((p["switch"], p["settings"]), (None, [["set-carry", "none"]]))
        self.assertTrue(P.plan_changes(p))
        # The defaults of a new machine: identity, off.
        p = P.plan_machine(None, "current", image="foo-0.1", carry="default", keep="off")
        self.assertEqual(p["settings"], [])
        # What boxctl would refuse is left to boxctl, which says why.
        p = P.plan_machine(view(), "current", image="foo-0.1", carry="identity,bogus")
        self.assertEqual(p["settings"], [["set-carry", "identity,bogus"]])

    def test_services_are_set_only_where_they_differ(self):
        p = P.plan_machine(view(image="foo-0.2"), "current", image="foo-0.2", services=["nginx", "pg, redis"])
        self.assertEqual(p["settings"], [["set-services", "nginx", "pg", "redis"]])
        self.assertEqual(p["predicted"]["services"], ["nginx", "pg", "redis"])
        same = dict(view(image="foo-0.2"), services=["nginx", "pg"])
        self.assertEqual(P.plan_machine(same, "current", image="foo-0.2", services=["nginx", "pg"])["settings"], [])
        # An empty list clears them; omitted, they stay.
        self.assertEqual(P.plan_machine(same, "current", image="foo-0.2", services=[])["settings"], [["set-services"]])
        self.assertEqual(P.plan_machine(same, "current", image="foo-0.2")["settings"], [])

    def test_private_users_cut_over_only_where_the_current_instance_differs(self):
        # Already as asked: nothing, whatever the image.
        self.assertFalse(P.plan_changes(P.plan_machine(view(), "current", image="foo-0.1", private_users=True)))
        # The same image, other users: a cutover to it, with the choice passed.
        p = P.plan_machine(view(), "current", image="foo-0.1", private_users=False)
        self.assertEqual(p["switch"], "cutover")
        self.assertEqual((p["predicted"]["private_users"], p["predicted"]["next_private_users"]), (False, False))
        args = P.switch_args(dict(name="m", image="foo-0.1", timeout=None, check=None, wait=False,
                                  private_users=False), p)
        self.assertEqual(args, ["cutover-instance", "m", "foo-0.1", "--private-users", "no"])
        # Omitted: a cutover keeps the machine's own choice, and passes none.
        p = P.plan_machine(view(private_users=True, next_private_users=False), "current", image="foo-0.2")
        self.assertEqual(p["predicted"]["private_users"], False)
        args = P.switch_args(dict(name="m", image="foo-0.2", timeout=None, check=None, wait=False), p)
        self.assertNotIn("--private-users", args)
        # A new machine: boxctl's default, unless told.
        self.assertTrue(P.plan_machine(None, "current", image="foo-0.1")["predicted"]["private_users"])
        self.assertIn("no private_users", P.plan_machine(view(fb="foo-0.2", fb_gen=2), "fallback",
                                                         private_users=True)["error"])
        self.assertIn("private_users", P.plan_machine(view(), "absent", private_users=False)["error"])

    def test_machine_view_reads_private_users(self):
        on = {"current": {"gen": 1, "image": "a"}, "privateUsers": {"base": 1879048192, "size": 65536},
              "nextPrivateUsers": True}
        self.assertEqual([P.machine_view(on)[k] for k in ("private_users", "next_private_users")], [True, True])
        off = dict(on, privateUsers=None, nextPrivateUsers=False)
        self.assertEqual([P.machine_view(off)[k] for k in ("private_users", "next_private_users")], [False, False])
        # No current instance: nothing runs, private or not.
        self.assertIsNone(P.machine_view({"current": None})["private_users"])

    def test_commands_in_the_order_the_task_runs_them(self):
        p = dict(name="m", image="foo-0.2", timeout=None, check=None, wait=True)
        plan = P.plan_machine(view(running=False), "current", image="foo-0.2", keep="2", enabled=True)
        self.assertEqual(P.plan_commands(p, plan, exists=True)["order"], [
            ["set-keep", "m", "2", "--wait"], ["cutover-instance", "m", "foo-0.2", "--wait"],
            ["enable", "m", "--wait"]])
        # A new machine gets its settings after the cutover that makes it.
        plan = P.plan_machine(None, "current", image="foo-0.2", keep="2")
        self.assertEqual([c[0] for c in P.plan_commands(p, plan, exists=False)["order"]],
                         ["cutover-instance", "set-keep"])
        gone = P.plan_commands(dict(p, wait=False), P.plan_machine(view(), "absent"), exists=True)
        self.assertEqual(gone["order"], [["poweroff", "m"], ["delete-machine", "m", "--yes"]])

    def test_switch_failure_says_cause_then_where_it_stands(self):
        p = dict(name="m", image="foo-0.2")
        plan = {"switch": "cutover"}
        doc = {"cause": {"message": "--check 'x' failed inside m (exit 1)", "hint": "try it"}}
        self.assertEqual(
            P.switch_failure(p, plan, 1, doc, view(), True, "cutover-instance m failed"),
            "m: cutover to foo-0.2 failed (boxctl exit 1): --check 'x' failed inside m (exit 1) (try it); "
            "boxctl went back to foo-0.1 (gen 1), which runs again. boxctl said: cutover-instance m failed")
        self.assertIn("left stopped", P.switch_failure(p, plan, 1, None, view(image=None, gen=None), True, "r"))
        self.assertIn("m does not exist", P.switch_failure(p, {"switch": "fallback"}, 1, None, None, False, "r"))

    def test_carry_spec_from_status(self):
        self.assertEqual(P.carry_spec({"identity": True, "etc": False, "paths": ["/srv"]}), "identity,/srv")
        self.assertEqual(P.carry_spec({"identity": False, "etc": False, "paths": []}), "none")
        self.assertEqual(P.carry_spec(None), "identity")
        self.assertEqual(P.keep_text(None), "off")
        self.assertEqual(P.keep_text(0), "0")

    def test_render(self):
        text = P.render_machine(view(image="foo-0.2", gen=2, fb="foo-0.1", fb_gen=1), "system1")
        self.assertIn("image: foo-0.2 (gen 2)\n", text)
        self.assertIn("fallback: foo-0.1 (gen 1)\n", text)
        self.assertIn("private users: true\ncarry: identity\nkeep: off\nservices: none\n", text)
        self.assertIn("state: absent", P.render_machine(None, "m"))


if __name__ == "__main__":
    unittest.main()
