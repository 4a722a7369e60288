# -*- coding: utf-8 -*-
"""boxctl_image and boxctl_info run end to end against a fake boxctl
(module_case.py), and every module's DOCUMENTATION against its
argument_spec; skipped where ansible-core is not installed.

    python3 -m unittest discover -s ansible/tests/unit -v
"""

from __future__ import absolute_import, division, print_function

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import unittest

from module_case import COLLECTION, ModuleCase, ansible_available


@unittest.skipUnless(ansible_available(), "ansible-core is not installed")
class TestImageAndInfoModules(ModuleCase):
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
