# -*- coding: utf-8 -*-
"""Unit tests of boxctl_image's decision logic (plugins/module_utils/boxctl_image_plan.py),
without Ansible.

    python3 -m unittest discover -s ansible/tests/unit -v
"""

from __future__ import absolute_import, division, print_function

import unittest

from module_case import load_utils

I = load_utils("boxctl_image_plan")


class TestPlanImage(unittest.TestCase):
    IMG = {"name": "foo-0.2", "sha256": "a" * 64, "usedBy": []}

    def test_stage_when_missing(self):
        self.assertEqual(I.plan_image(None, "present", "foo-0.2"), ("stage", None))

    def test_nothing_when_staged_with_same_sha(self):
        self.assertEqual(I.plan_image(self.IMG, "present", "foo-0.2", sha256="A" * 64), (None, None))
        self.assertEqual(I.plan_image(self.IMG, "present", "foo-0.2", source_sha256="a" * 64), (None, None))
        self.assertEqual(I.plan_image(self.IMG, "present", "foo-0.2"), (None, None))

    def test_refuses_other_content_under_the_same_name(self):
        action, err = I.plan_image(self.IMG, "present", "foo-0.2", sha256="b" * 64)
        self.assertIsNone(action)
        self.assertIn("already staged with sha256", err)

    def test_absent(self):
        self.assertEqual(I.plan_image(None, "absent", "foo-0.2"), (None, None))
        self.assertEqual(I.plan_image(self.IMG, "absent", "foo-0.2"), ("delete", None))
        used = dict(self.IMG, usedBy=[{"machine": "system1", "gen": 2, "role": "current"}])
        action, err = I.plan_image(used, "absent", "foo-0.2")
        self.assertIsNone(action)
        self.assertIn("system1 gen 2 (current)", err)


if __name__ == "__main__":
    unittest.main()
