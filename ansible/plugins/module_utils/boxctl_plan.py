# -*- coding: utf-8 -*-
# Copyright (c) boxctl contributors
# MIT License (see the LICENSE of the boxctl repository)
"""What boxctl_machine plans from boxctl's status --json, and how it shows it.

Pure functions of plain data (standard library only, never ansible), so the
decisions are unit-tested without Ansible or boxctl.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def machine_view(status):
    """The parts of status --json the decisions use; None for no machine."""
    if status is None:
        return None
    cur = status.get("current") or None
    fb = status.get("fallback") or None
    return {
        "image": cur.get("image") if cur else None,
        "gen": cur.get("gen") if cur else None,
        "fallback_image": fb.get("image") if fb else None,
        "fallback_gen": fb.get("gen") if fb else None,
        "running": status.get("state") == "running",
        "state": status.get("state"),
        "enabled": bool(status.get("enabled")),
        "carry": carry_spec(status.get("carry")),
        "keep": keep_text(status.get("keep")),
        "services": list(status.get("services") or []),
        # The current instance's: null privateUsers is root inside = root outside.
        "private_users": bool(status.get("privateUsers")) if cur else None,
        # What the machine's next cutover gives its new instance (a boxctl before it: yes).
        "next_private_users": status.get("nextPrivateUsers", True) is not False,
    }


def carry_spec(policy):
    """A carry policy from status --json as the SPEC boxctl prints (identity,etc,/PATH or none)."""
    if not isinstance(policy, dict):
        return "identity"  # a boxctl before set-carry: the default
    parts = (["identity"] if policy.get("identity") else []) + (["etc"] if policy.get("etc") else [])
    return ",".join(parts + list(policy.get("paths") or [])) or "none"


def normal_carry(spec):
    """SPEC as boxctl stores it (parts in order, paths without doubled or trailing slashes,
    none of them inside another), for comparison; None where boxctl would refuse it, which
    its own message then says."""
    parts = [x.strip() for x in spec.split(",") if x.strip()]
    if parts == ["none"]:
        return "none"
    identity, etc, paths = False, False, []
    for part in parts:
        if part in ("identity", "default"):
            identity = True
        elif part == "etc":
            etc = True
        elif part.startswith("/") and part.strip("/"):
            path = "/" + "/".join(c for c in part.split("/") if c)
            if path not in paths:
                paths.append(path)
        else:
            return None
    paths = [q for q in paths if not any(o != q and q.startswith(o + "/") for o in paths)]
    return carry_spec({"identity": identity, "etc": etc, "paths": paths}) if parts else None


def keep_text(keep):
    """status --json's keep (a number, or null for off) as set-keep takes it."""
    return "off" if keep is None else str(keep)


def plan_machine(view, state, image=None, from_image=None, enabled=None, started=None,
                 carry=None, keep=None, services=None, private_users=None):
    """What boxctl_machine has to do.

    Returns a dict: switch (None, "cutover" or "fallback"), enable (None,
    True or False), power (None, "start" or "poweroff"), delete (state=absent:
    boxctl delete-machine, after the poweroff if it runs), settings (the
    set-carry, set-keep and set-services calls, as [verb, value...]: before the switch
    on a machine that exists, so that the cutover carries by the new policy;
    after it on a new one, which boxctl creates with its first cutover),
    predicted (the machine_view expected afterwards; None for absent), error
    (message or None). With private_users given, a current instance that
    runs otherwise is replaced by a cutover to the same image, which the
    switch passes --private-users (a machine keeps the choice, so its later
    cutovers keep it too).
    """
    plan = {"switch": None, "enable": None, "power": None, "delete": False, "settings": [],
            "predicted": None, "error": None}
    if state == "absent":
        if any(x is not None for x in (enabled, started, carry, keep, services, private_users)):
            plan["error"] = ("state=absent takes none of enabled, started, carry, keep, services "
                             "and private_users")
        elif view is not None:
            plan["delete"] = True
            plan["power"] = "poweroff" if view["running"] else None
        return plan
    after = dict(view) if view else {
        "image": None, "gen": None, "fallback_image": None, "fallback_gen": None,
        "running": False, "state": "absent", "enabled": False, "carry": "identity", "keep": "off",
        "services": [], "private_users": None, "next_private_users": True,
    }
    if state == "current":
        if not image:
            plan["error"] = "state=current needs image"
            return plan
        users_differ = private_users is not None and view is not None and (
            view.get("private_users") != private_users)
        if view is None or view["image"] != image or users_differ:
            plan["switch"] = "cutover"
            after["fallback_image"], after["fallback_gen"] = after["image"], after["gen"]
            after["image"], after["gen"] = image, None
            after["running"], after["state"] = True, "running"
            if private_users is not None:
                after["next_private_users"] = private_users
            after["private_users"] = after["next_private_users"]
    elif state == "fallback":
        if private_users is not None:
            plan["error"] = ("state=fallback takes no private_users: a fallback returns to an "
                             "instance as it is")
            return plan
        if view is None:
            plan["error"] = "boxctl manages no machine of that name: nothing to fall back from"
            return plan
        if from_image is not None and view["image"] != from_image:
            pass  # already away from from_image: nothing to do
        elif not view["fallback_image"]:
            plan["error"] = "the machine has no fallback instance (current: %s)" % (view["image"],)
            return plan
        elif from_image is not None and view["fallback_image"] == from_image:
            plan["error"] = ("the fallback instance runs %s too: falling back would not leave it"
                             % from_image)
            return plan
        else:
            plan["switch"] = "fallback"
            after["image"], after["fallback_image"] = view["fallback_image"], view["image"]
            after["gen"], after["fallback_gen"] = view["fallback_gen"], view["gen"]
            after["running"], after["state"] = True, "running"
    else:
        plan["error"] = "unknown state %r" % (state,)
        return plan
    for key, want in (("carry", carry), ("keep", keep)):
        if want is None:
            continue
        norm = normal_carry(want) if key == "carry" else (want.strip().lower() or None)
        if norm is None or norm != after.get(key):
            plan["settings"].append(["set-" + key, want])
            after[key] = norm or want
    if services is not None:
        units = [u.strip() for s in services for u in s.split(",") if u.strip()]
        if units != after.get("services"):
            plan["settings"].append(["set-services"] + units)
            after["services"] = units
    if enabled is not None and after["enabled"] != enabled:
        plan["enable"] = enabled
        after["enabled"] = enabled
    if started is True and not after["running"]:
        plan["power"] = "start"
        after["running"], after["state"] = True, "running"
    elif started is False and after["running"]:
        plan["power"] = "poweroff"
        after["running"], after["state"] = False, "stopped"
    plan["predicted"] = after
    return plan


def plan_changes(plan):
    return bool(plan["switch"] or plan["enable"] is not None or plan["power"] or plan["delete"]
                or plan["settings"])


def went_back(doc, before_status, after_status):
    """Whether boxctl went back on its own after a failed cutover or fallback.

    From the verb's JSON if it printed one; else from status: a new last
    operation whose result is rolled-back (a machine that was busy, say, has
    the same last operation as before and did not go back).
    """
    if doc is not None and doc.get("result"):
        return doc["result"] == "rolled-back"
    if not after_status:
        return False
    last = after_status.get("lastOperation") or {}
    prev = (before_status or {}).get("lastOperation") or {}
    return last.get("result") == "rolled-back" and last != prev


def cause_message(doc):
    """What went wrong first, from the verb's JSON (cause), with its hint; None without one."""
    cause = (doc or {}).get("cause")
    if not isinstance(cause, dict) or not cause.get("message"):
        return None
    return cause["message"] + (" (" + cause["hint"] + ")" if cause.get("hint") else "")


def switch_args(p, plan):
    if plan["switch"] == "cutover":
        args = ["cutover-instance", p["name"], p["image"]]
        if p.get("private_users") is not None:
            args += ["--private-users", "yes" if p["private_users"] else "no"]
    else:
        args = ["fallback-instance", p["name"]]
    if p["timeout"] is not None:
        args += ["--timeout", str(p["timeout"])]
    if p["check"] is not None:
        args += ["--check", p["check"]]
    if p["wait"]:
        args.append("--wait")
    return args


def plan_commands(p, plan, exists):
    """The boxctl commands of a plan (argv lists without the executable), by phase and in the
    order the task runs them: delete (state=absent, after a poweroff if it runs); the
    settings, before the switch on a machine that exists (so that its cutover carries by
    them), after it on a new one; the switch; enable or disable; start or poweroff. With
    wait, every command that takes the machine's lock gets --wait."""
    name = p["name"]
    lock_wait = ["--wait"] if p["wait"] else []
    delete = ["delete-machine", name, "--yes"] + lock_wait
    settings = [[s[0], name] + s[1:] + lock_wait for s in plan["settings"]]
    order = []
    if plan["delete"]:
        order += ([["poweroff", name] + lock_wait] if plan["power"] else []) + [delete]
    if exists:
        order += settings
    if plan["switch"]:
        order.append(switch_args(p, plan))
    if not exists:
        order += settings
    if plan["enable"] is not None:
        order.append(["enable" if plan["enable"] else "disable", name] + lock_wait)
    if plan["power"] and not plan["delete"]:
        order.append([plan["power"], name] + lock_wait)
    return {"lock_wait": lock_wait, "delete": delete, "settings": settings, "settings_first": exists,
            "order": order}


def switch_failure(p, plan, rc, doc, after, rolled_back, reason):
    """The task's message for a failed cutover or fallback: what failed and why first (boxctl's
    cause), then where the machine stands (after: its machine_view now), then boxctl's words."""
    name = p["name"]
    cause = cause_message(doc)
    if rolled_back and after and after["gen"] is None:
        where = "%s had no instance to go back to and is left stopped" % name
    elif rolled_back and after:
        where = "boxctl went back to %s (gen %s), which runs again" % (after["image"], after["gen"])
    elif after:
        where = "%s is on %s (gen %s), %s" % (name, after["image"], after["gen"], after["state"])
    else:
        where = "%s does not exist" % name
    what = "cutover to %s" % p["image"] if plan["switch"] == "cutover" else "fallback"
    return "%s: %s failed (boxctl exit %s)%s; %s. boxctl said: %s" % (
        name, what, rc, ": " + cause if cause else "", where, reason)


def render_machine(view, name):
    """A short text for --diff: what the operator cares about."""
    if view is None:
        return "machine: %s\nstate: absent\n" % name
    gen = view.get("gen")
    cur = "%s (gen %s)" % (view["image"], gen) if view["image"] and gen else (view["image"] or "none")
    fb = view.get("fallback_image") or "none"
    if view.get("fallback_image") and view.get("fallback_gen"):
        fb = "%s (gen %s)" % (view["fallback_image"], view["fallback_gen"])
    users = view.get("private_users")
    return ("machine: %s\nimage: %s\nfallback: %s\nstate: %s\nenabled: %s\nprivate users: %s\n"
            "carry: %s\nkeep: %s\nservices: %s\n") % (
        name, cur, fb, view.get("state"), str(view.get("enabled")).lower(),
        "unknown" if users is None else str(users).lower(), view.get("carry"),
        view.get("keep"), ", ".join(view.get("services") or []) or "none")
