#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) boxctl contributors
# MIT License (see the LICENSE of the boxctl repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: boxctl_info
short_description: Read boxctl's machines, images and machine status
version_added: "0.1.0"
description:
  - Returns the JSON of C(boxctl list --json), C(boxctl list-images --json) and
    C(boxctl status NAME --json) for the machines named in C(name), unchanged (the schemas are
    in boxctl's docs/json.md), and the same data as the host fact C(boxctl).
  - Reads only; never changes anything, so it runs in check mode as well.
author:
  - boxctl contributors
requirements:
  - boxctl on the managed host, run as root
options:
  gather:
    description: What to read. C(status) reads every machine in C(name) (or every managed machine without C(name)).
    type: list
    elements: str
    choices: [list, images, status]
    default: [list, images]
  name:
    description: Machines whose C(status) to read (implies C(status) in C(gather)).
    type: list
    elements: str
  executable:
    description: The boxctl command, if it is not on the PATH (or in /usr/local/bin).
    type: path
notes:
  - The result is also set as the fact C(boxctl) (C(ansible_facts.boxctl)), so later tasks and
    other hosts (through C(hostvars)) can read it.
seealso:
  - module: boxctl.boxctl.boxctl_machine
"""

EXAMPLES = r"""
- name: Read boxctl's view of the host
  boxctl.boxctl.boxctl_info:
    gather: [list, images, status]

- name: Which image does system1 run?
  boxctl.boxctl.boxctl_info:
    name: system1
- ansible.builtin.debug:
    msg: "{{ boxctl.status.system1.current.image }}"
"""

RETURN = r"""
list:
  description: C(boxctl list --json).
  type: dict
  returned: when list is gathered
images:
  description: C(boxctl list-images --json).
  type: dict
  returned: when images is gathered
status:
  description: C(boxctl status NAME --json) of each machine, by name; null for a name boxctl does not manage.
  type: dict
  returned: when status is gathered
ansible_facts:
  description: The same data as the fact C(boxctl).
  type: dict
  returned: always
  contains:
    boxctl:
      description: A dict with the keys C(list), C(images) and C(status) that were gathered.
      type: dict
      returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.boxctl.boxctl.plugins.module_utils.boxctl import Boxctl, BoxctlError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            gather=dict(type="list", elements="str", default=["list", "images"],
                        choices=["list", "images", "status"]),
            name=dict(type="list", elements="str"),
            executable=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    exe = p["executable"] or module.get_bin_path(
        "boxctl", required=True, opt_dirs=["/usr/local/bin", "/usr/local/sbin"])
    bx = Boxctl(lambda argv: module.run_command(argv, environ_update={"LC_ALL": "C"}), exe)
    gather = set(p["gather"])
    if p["name"]:
        gather.add("status")
    facts = {}
    try:
        listing = None
        if "list" in gather or "status" in gather:
            listing = bx.list()
            if "list" in gather:
                facts["list"] = listing
        if "images" in gather:
            facts["images"] = bx.list_images()
        if "status" in gather:
            managed = [m["name"] for m in listing.get("machines", []) if m.get("managed")]
            facts["status"] = {}
            for name in (p["name"] or managed):
                facts["status"][name] = bx.status(name) if name in managed else None
    except BoxctlError as e:
        module.fail_json(**e.as_result())
    result = dict(changed=False, ansible_facts={"boxctl": facts})
    result.update(facts)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
