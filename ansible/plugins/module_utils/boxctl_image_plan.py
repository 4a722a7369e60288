# -*- coding: utf-8 -*-
# Copyright (c) boxctl contributors
# MIT License (see the LICENSE of the boxctl repository)
"""What boxctl_image plans from boxctl's list-images --json, and how it shows it.

Pure functions of plain data (standard library only, never ansible), so the
decisions are unit-tested without Ansible or boxctl.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


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
