#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) boxctl contributors
# MIT License (see the LICENSE of the boxctl repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: boxctl_image
short_description: Ensure a boxctl image is staged, or absent
version_added: "0.1.0"
description:
  - Ensures that the image I(name) is staged in boxctl's store on the managed host
    (C(boxctl stage-image)), from a tarball on that host (C(path)) or from an http(s) URL that
    the host downloads (C(url)); or that it is absent (C(boxctl delete-image)).
  - An image name stays bound to its content. If an image of that name is already staged, the
    task changes nothing when its sha256 is the one expected (C(sha256), or the sha256 of
    C(path)), and fails when it differs.
  - The module reads the store with C(boxctl list-images --json) and decides from that JSON and
    from boxctl's exit status only.
  - Supports check mode and diff mode.
author:
  - boxctl contributors
requirements:
  - boxctl on the managed host, run as root; C(stage-image URL) needs a boxctl with URL support
options:
  name:
    description:
      - The image name. Defaults to the file name of C(path) or C(url) without its archive
        suffix (C(foo-0.2.tar.gz) gives C(foo-0.2)), as boxctl names it.
      - Required with C(state=absent).
    type: str
  path:
    description: A root-filesystem tarball on the managed host (.tar, .tar.gz, .tar.xz, .tar.zst, .tar.bz2).
    type: path
  url:
    description:
      - An C(http://) or C(https://) URL of the tarball, downloaded by boxctl on the managed
        host. C(sha256) is required for C(http://).
      - User info (C(https://user:password@host/...)) and the query string are kept out of
        Ansible's output and logs.
    type: str
  sha256:
    description:
      - The expected sha256 of the tarball (64 hex digits), checked by boxctl before the image
        appears (C(--sha256)), and compared with the staged image's.
    type: str
  timeout:
    description: With C(url), seconds the server may stay silent before boxctl gives up (C(--timeout); boxctl's default is 30).
    type: int
  force:
    description: Stage an archive that holds no os-release file (C(--force)).
    type: bool
    default: false
  state:
    description: Whether the image should be staged or not.
    type: str
    choices: [present, absent]
    default: present
  executable:
    description: The boxctl command, if it is not on the PATH (or in /usr/local/bin).
    type: path
notes:
  - C(state=absent) fails while an instance of any machine uses the image (see C(image.usedBy)).
seealso:
  - module: boxctl.boxctl.boxctl_machine
"""

EXAMPLES = r"""
- name: Stage foo-0.2 from a tarball on the host
  boxctl.boxctl.boxctl_image:
    path: /srv/images/foo-0.2.tar
    sha256: 3b13e562ed7056a6ae619596830974159427959e331e30535e6077ca7b462ea2

- name: Stage foo-0.2 from a URL
  boxctl.boxctl.boxctl_image:
    url: https://images.example.com/foo-0.2.tar.zst
    sha256: "{{ foo_sha256 }}"

- name: Remove an image nothing uses any more
  boxctl.boxctl.boxctl_image:
    name: foo-0.1
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the image was (or, in check mode, would be) staged or deleted.
  type: bool
  returned: always
name:
  description: The image name.
  type: str
  returned: always
  sample: foo-0.2
image:
  description: The image's entry of C(boxctl list-images --json) after the task; null when absent (or not yet staged, in check mode).
  type: dict
  returned: always
  sample:
    name: foo-0.2
    os: Debian GNU/Linux 12 (bookworm)
    size: 147867403
    sha256: 3b13e562ed7056a6ae619596830974159427959e331e30535e6077ca7b462ea2
    source: foo-0.2.tar
    usedBy: []
result:
  description: The JSON document of C(stage-image)/C(delete-image), when boxctl supports C(--json) on it.
  type: dict
  returned: when a mutating verb ran and printed JSON
commands:
  description: The boxctl command lines the task ran (or would run).
  type: list
  elements: list
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.boxctl.boxctl.plugins.module_utils.boxctl import (
    Boxctl, BoxctlError, error_message, image_name_from_source, redact_url, url_secrets,
)
from ansible_collections.boxctl.boxctl.plugins.module_utils.boxctl_image_plan import (
    find_image, image_view, plan_image, render_image,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            path=dict(type="path"),
            url=dict(type="str"),
            sha256=dict(type="str"),
            timeout=dict(type="int"),
            force=dict(type="bool", default=False),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            executable=dict(type="path"),
        ),
        mutually_exclusive=[("path", "url")],
        required_if=[("state", "absent", ["name"])],
        supports_check_mode=True,
    )
    p = module.params
    url = p["url"]
    if url:
        # Credentials in the URL never reach the output, the log or a callback.
        for secret in url_secrets(url):
            module.no_log_values.add(secret)
    if p["state"] == "present" and not (p["path"] or url):
        module.fail_json(msg="state=present needs path or url")
    if url and not url.startswith(("http://", "https://")):
        module.fail_json(msg="url must start with http:// or https://: %s" % redact_url(url))
    if url and url.startswith("http://") and not p["sha256"]:
        module.fail_json(msg="a plain http:// url needs sha256: nothing else protects the download")
    sha = p["sha256"].lower() if p["sha256"] else None
    if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        module.fail_json(msg="sha256 must be 64 hex digits")
    name = p["name"] or image_name_from_source(p["path"] or url)
    if not name:
        module.fail_json(msg="cannot derive an image name from the source; give name")

    exe = p["executable"] or module.get_bin_path(
        "boxctl", required=True, opt_dirs=["/usr/local/bin", "/usr/local/sbin"])
    bx = Boxctl(lambda argv: module.run_command(argv, environ_update={"LC_ALL": "C"}), exe, warn=module.warn)
    result = dict(changed=False, name=name, image=None, commands=[])

    try:
        existing = find_image(bx.list_images(), name)
    except BoxctlError as e:
        module.fail_json(**dict(result, **e.as_result()))
    result["image"] = existing

    source_sha = None
    if p["state"] == "present" and existing is not None and not sha and p["path"]:
        # No digest given: the file on the host is the reference.
        if not os.path.exists(p["path"]):
            module.fail_json(msg="%s does not exist on the host" % p["path"], **result)
        source_sha = module.sha256(p["path"])
    action, error = plan_image(existing, p["state"], name, sha256=sha, source_sha256=source_sha)
    if error:
        module.fail_json(msg=error, **result)

    if action == "stage":
        args = ["stage-image", p["path"] or url, "--name", name, "--quiet"]
        if sha:
            args += ["--sha256", sha]
        if p["force"]:
            args.append("--force")
        if url and p["timeout"] is not None:
            args += ["--timeout", str(p["timeout"])]
    elif action == "delete":
        args = ["delete-image", name]
    else:
        args = None

    diff = {"before_header": "boxctl image %s" % name, "after_header": "boxctl image %s" % name,
            "before": render_image(existing)}
    if args is None or module.check_mode:
        result["changed"] = args is not None
        if args:
            result["commands"] = [[exe] + args]
        if module._diff:
            planned = None if action == "delete" else (existing or {"name": name, "sha256": sha or "(from source)"})
            diff["after"] = render_image(planned)
            result["diff"] = diff
        module.exit_json(**result)

    if action == "stage" and p["path"] and not os.path.exists(p["path"]):
        module.fail_json(msg="%s does not exist on the host" % p["path"], **result)
    rc, doc, cmd, out, err = bx.mutate(args)
    result["commands"].append(cmd)
    if doc is not None:
        result["result"] = doc
    try:
        after = find_image(bx.list_images(), name)
    except BoxctlError as e:
        after = None
        module.warn("could not list images after the change: %s" % e.msg)
    result["image"] = after
    result["changed"] = image_view(after) != image_view(existing)
    if rc != 0:
        module.fail_json(msg="boxctl %s failed: %s" % (args[0], error_message(doc, err, "exit status %s" % rc)),
                         rc=rc, stdout=out, stderr=err, cmd=cmd, **result)
    if module._diff:
        diff["after"] = render_image(after)
        result["diff"] = diff
    if action == "stage" and after is None:
        module.fail_json(msg="boxctl stage-image exited 0 but image %s is not listed" % name, **result)
    if action == "delete" and after is not None:
        module.fail_json(msg="boxctl delete-image exited 0 but image %s is still listed" % name, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
