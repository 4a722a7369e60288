#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) boxctl contributors
# MIT License (see the LICENSE of the boxctl repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: boxctl_machine
short_description: Ensure a boxctl machine runs a given image, or fall it back
version_added: "0.1.0"
description:
  - Ensures that the systemd-nspawn machine I(name), managed by boxctl, runs an instance of
    I(image) as its current instance. If it does not, the module runs
    C(boxctl cutover-instance NAME IMAGE), which creates a new instance of the image, restarts
    the machine on it and waits for it to boot. If the new instance does not boot within
    I(timeout) or the I(check) command fails inside it, boxctl goes back to the instance that
    was current before, on its own, and the task fails with C(rolled_back=true).
  - With C(state=fallback) it runs C(boxctl fallback-instance NAME), which swaps the current and
    the fallback instance. Give C(from_image) to make that idempotent, the machine then falls
    back only while its current instance runs that image.
  - Optionally also ensures the machine is enabled (starts with the host) and started.
  - The module reads the machine with C(boxctl list --json) and C(boxctl status NAME --json)
    before and after each change; it decides only from that JSON and from boxctl's exit status.
  - Supports check mode and diff mode (the current and fallback image, state, private users
    and settings before and after).
author:
  - boxctl contributors
requirements:
  - boxctl on the managed host (Node.js 18 or newer, systemd-container), run as root
options:
  name:
    description: The machine's name.
    type: str
    required: true
  state:
    description:
      - C(current) ensures the machine's current instance is an instance of C(image),
        cutting over if it is not (a machine that does not exist yet is created).
      - C(fallback) runs C(boxctl fallback-instance) (see C(from_image)).
      - C(absent) deletes the machine with C(boxctl delete-machine NAME --yes), after
        C(boxctl poweroff NAME) if it runs; every instance goes with its changes, the images
        stay (M(boxctl.boxctl.boxctl_image) or C(boxctl prune) deletes them). Takes neither
        C(enabled) nor C(started).
    type: str
    choices: [current, fallback, absent]
    default: current
  image:
    description:
      - The staged image the machine must run. Required with C(state=current).
      - Stage it first with M(boxctl.boxctl.boxctl_image).
    type: str
  from_image:
    description:
      - With C(state=fallback), fall back only while the current instance runs this image;
        otherwise nothing changes. Without it, every run falls back (and a second run returns
        to the newer instance), so set it in playbooks.
      - Fails if the fallback instance runs this image too.
    type: str
  check:
    description:
      - A shell command that must succeed inside the container after the cutover or fallback
        (passed as C(--check)). It is run by C(/bin/sh -c) inside the container. If it fails,
        boxctl goes back to the previous instance on its own.
    type: str
  timeout:
    description: Seconds to wait for the container to boot (C(--timeout); boxctl's default is 90).
    type: int
  wait:
    description: If another boxctl command holds the machine, wait for it (C(--wait)) instead of failing, in every boxctl command the task runs.
    type: bool
    default: false
  enabled:
    description: Whether the machine starts with the host (C(boxctl enable) / C(boxctl disable)). Unchanged if omitted.
    type: bool
  started:
    description:
      - Whether the machine runs (C(boxctl start) / C(boxctl poweroff)). Unchanged if omitted.
      - A cutover or fallback always leaves the machine running; C(false) then powers it off.
    type: bool
  carry:
    description:
      - The machine's carry policy (C(boxctl set-carry NAME SPEC)), what every cutover carries
        from the old instance into the new one. C(none), or a comma-separated list of
        C(identity) (boxctl's default), C(etc) and absolute paths, e.g. C(identity,etc,/var/lib/app).
        Unchanged if omitted.
      - Set before the task's cutover on a machine that exists, so that this cutover carries by
        it; after the cutover that creates a new machine (which has nothing to carry yet).
      - boxctl checks SPEC; check mode does not.
    type: str
  keep:
    description:
      - The machine's keep setting (C(boxctl set-keep NAME N)), a number or C(off) (boxctl's
        default). After every successful cutover boxctl deletes the machine's instances beyond
        the N newest, never the current, fallback or pinned ones, which do not count among the N.
        Unchanged if omitted.
      - Set before the task's cutover on a machine that exists, after it on a new one, as
        I(carry).
    type: str
  services:
    description:
      - The units C(boxctl app-status NAME) checks in the container (C(boxctl set-services NAME UNIT...)),
        e.g. C([nginx, postgresql]); an empty list clears them. Unchanged if omitted.
      - Set as I(carry) is.
    type: list
    elements: str
  private_users:
    description:
      - Whether the machine's current instance runs in a user namespace of its own (root
        inside is an unprivileged uid on the host; boxctl's default for a new machine) or
        not (root inside is root on the host). Unchanged if omitted.
      - If the current instance runs otherwise, the task cuts over to I(image) with
        C(--private-users yes|no) even when the machine already runs I(image); the machine
        keeps the choice for its later cutovers. Only with C(state=current).
    type: bool
  executable:
    description: The boxctl command, if it is not on the PATH (or in /usr/local/bin).
    type: path
notes:
  - Check mode reports what would change without calling any mutating boxctl verb. It does
    not require C(image) to be staged yet, so a C(--check) run of a playbook that stages the
    image in an earlier task shows the planned cutover.
  - The check command is logged like any parameter; do not put secrets in it.
seealso:
  - module: boxctl.boxctl.boxctl_image
  - module: boxctl.boxctl.boxctl_info
"""

EXAMPLES = r"""
- name: Run system1 on foo-0.2, checked, enabled and started
  boxctl.boxctl.boxctl_machine:
    name: system1
    image: foo-0.2
    check: systemctl is-active nginx
    timeout: 120
    enabled: true
    started: true

- name: Run web1 on foo-0.2, carrying its identity, /etc and its data; keep 3 instances
  boxctl.boxctl.boxctl_machine:
    name: web1
    image: foo-0.2
    carry: identity,etc,/var/lib/app
    keep: "3"

- name: Roll system1 back off foo-0.2 (idempotent)
  boxctl.boxctl.boxctl_machine:
    name: system1
    state: fallback
    from_image: foo-0.2
    wait: true
"""

RETURN = r"""
changed:
  description: Whether a cutover, fallback, set-carry, set-keep, set-services, enable/disable or start/poweroff ran (or would run, in check mode).
  type: bool
  returned: always
image:
  description: The image of the current instance after the task (the one planned, in check mode).
  type: str
  returned: always
  sample: foo-0.2
before_image:
  description: The image of the current instance before the task; null for a new machine.
  type: str
  returned: always
  sample: foo-0.1
switched:
  description: C(cutover), C(fallback) or null; what the task ran (or would run, in check mode).
  type: str
  returned: always
rolled_back:
  description:
    - True when the cutover or fallback failed and boxctl went back to the previous instance,
      which runs again (a machine's first cutover has none, and the machine is left stopped).
      The task then fails; its message starts with what went wrong (boxctl's C(cause)).
  type: bool
  returned: always
status:
  description: C(boxctl status NAME --json) after the task (before it, in check mode); null if the machine does not exist.
  type: dict
  returned: always
  sample:
    version: 1
    name: system1
    state: running
    enabled: true
    current: {gen: 2, image: foo-0.2}
    fallback: {gen: 1, image: foo-0.1}
result:
  description: The JSON document of the mutating verb, when boxctl supports C(--json) on it.
  type: dict
  returned: when a mutating verb ran and printed JSON
commands:
  description: The boxctl command lines the task ran (or would run, in check mode).
  type: list
  elements: list
  returned: always
stderr:
  description: boxctl's standard error from the failed command.
  type: str
  returned: on failure
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.boxctl.boxctl.plugins.module_utils.boxctl import Boxctl, BoxctlError, error_message
from ansible_collections.boxctl.boxctl.plugins.module_utils.boxctl_plan import (
    machine_view, plan_changes, plan_commands, plan_machine, render_machine, switch_args, switch_failure,
    went_back,
)


def find_boxctl(module):
    exe = module.params["executable"]
    if exe:
        return exe
    return module.get_bin_path("boxctl", required=True, opt_dirs=["/usr/local/bin", "/usr/local/sbin"])


def delete_machine(module, bx, name, plan, args, lock_wait, result, diff, reread):
    """state=absent: poweroff if it runs, then delete-machine; exits the module."""
    if plan["power"]:
        argv = ["poweroff", name] + lock_wait
        rc, out, err = bx.run(argv)
        result["commands"].append([bx.executable] + argv)
        if rc != 0:
            result["status"] = reread()
            module.fail_json(msg="%s: boxctl poweroff failed: %s" % (name, error_message(None, err, "exit status %s" % rc)),
                             rc=rc, stdout=out, stderr=err, **result)
    rc, doc, cmd, out, err = bx.mutate(args)
    result["commands"].append(cmd)
    if doc is not None:
        result["result"] = doc
    if rc != 0:
        result["status"] = reread()
        module.fail_json(msg="%s: boxctl delete-machine failed: %s" % (name, error_message(doc, err, "exit status %s" % rc)),
                         rc=rc, stdout=out, stderr=err, cmd=cmd, **result)
    result["status"], result["image"] = None, None
    if module._diff:
        diff["after"] = render_machine(None, name)
        result["diff"] = diff
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="current", choices=["current", "fallback", "absent"]),
            image=dict(type="str"),
            from_image=dict(type="str"),
            check=dict(type="str"),
            timeout=dict(type="int"),
            wait=dict(type="bool", default=False),
            enabled=dict(type="bool"),
            started=dict(type="bool"),
            carry=dict(type="str"),
            keep=dict(type="str"),
            services=dict(type="list", elements="str"),
            private_users=dict(type="bool"),
            executable=dict(type="path"),
        ),
        required_if=[("state", "current", ["image"])],
        supports_check_mode=True,
    )
    p = module.params
    name = p["name"]
    bx = Boxctl(lambda argv: module.run_command(argv, environ_update={"LC_ALL": "C"}), find_boxctl(module),
                warn=module.warn)
    result = dict(changed=False, image=None, before_image=None, switched=None, rolled_back=False,
                  status=None, commands=[])

    try:
        before_status = bx.machine_status(name)
    except BoxctlError as e:
        module.fail_json(**dict(result, **e.as_result()))
    before = machine_view(before_status)
    plan = plan_machine(before, p["state"], image=p["image"], from_image=p["from_image"],
                        enabled=p["enabled"], started=p["started"], carry=p["carry"], keep=p["keep"],
                        services=p["services"], private_users=p["private_users"])
    result["status"] = before_status
    result["before_image"] = before["image"] if before else None
    if plan["error"]:
        module.fail_json(msg="%s: %s" % (name, plan["error"]), **result)

    changed = plan_changes(plan)
    result["changed"] = changed
    result["switched"] = plan["switch"]
    cmds = plan_commands(p, plan, exists=before is not None)
    lock_wait, settings, settings_first = cmds["lock_wait"], cmds["settings"], cmds["settings_first"]
    delete_args = cmds["delete"]
    planned_cmds = [[bx.executable] + a for a in cmds["order"]]
    diff = {"before_header": "boxctl machine %s" % name, "after_header": "boxctl machine %s" % name,
            "before": render_machine(before, name)}

    if module.check_mode or not changed:
        result["image"] = plan["predicted"]["image"] if plan["predicted"] else None
        result["commands"] = planned_cmds
        if module._diff:
            diff["after"] = render_machine(plan["predicted"], name)
            result["diff"] = diff
        module.exit_json(**result)

    def reread():
        try:
            return bx.machine_status(name)
        except BoxctlError as e:
            module.warn("could not read %s after the change: %s" % (name, e.msg))
            return None

    def set_all():
        for args in settings:
            rc, doc, cmd, out, err = bx.mutate(args)
            result["commands"].append(cmd)
            if rc != 0:
                result["status"] = reread()
                module.fail_json(msg="%s: boxctl %s failed: %s" % (name, args[0], error_message(doc, err, "exit status %s" % rc)),
                                 rc=rc, stdout=out, stderr=err, cmd=cmd, **result)

    if plan["delete"]:
        delete_machine(module, bx, name, plan, delete_args, lock_wait, result, diff, reread)

    if settings_first:
        set_all()
    if plan["switch"]:
        rc, doc, cmd, out, err = bx.mutate(switch_args(p, plan))
        result["commands"].append(cmd)
        if doc is not None:
            result["result"] = doc
        if rc != 0:
            after_status = reread()
            after = machine_view(after_status)
            result["status"] = after_status
            result["image"] = after["image"] if after else None
            result["rolled_back"] = went_back(doc, before_status, after_status)
            if module._diff:
                diff["after"] = render_machine(after, name)
                result["diff"] = diff
            module.fail_json(msg=switch_failure(p, plan, rc, doc, after, result["rolled_back"],
                                                error_message(doc, err, "exit status %s" % rc)),
                             rc=rc, stdout=out, stderr=err, cmd=cmd, **result)

    if not settings_first:
        set_all()
    for verb in (["enable" if plan["enable"] else "disable"] if plan["enable"] is not None else []) + (
            [plan["power"]] if plan["power"] else []):
        rc, out, err = bx.run([verb, name] + lock_wait)
        result["commands"].append([bx.executable, verb, name] + lock_wait)
        if rc != 0:
            result["status"] = reread()
            module.fail_json(msg="%s: boxctl %s failed: %s" % (name, verb, error_message(None, err, "exit status %s" % rc)),
                             rc=rc, stdout=out, stderr=err, **result)

    after_status = reread()
    after = machine_view(after_status)
    result["status"] = after_status
    result["image"] = after["image"] if after else None
    if module._diff:
        diff["after"] = render_machine(after, name)
        result["diff"] = diff
    if p["state"] == "current" and (after is None or after["image"] != p["image"]):
        module.fail_json(msg="%s: boxctl reported success but the current instance runs %s, not %s"
                         % (name, result["image"], p["image"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
