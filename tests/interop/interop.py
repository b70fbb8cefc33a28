#!/usr/bin/env python3
"""Drives our NetAuth test server with NetAuth's published Python client
(PyPI `netauth` 0.1.0) and asserts every answer.

The server must be seeded with tests/testserver/fixtures/sample.toml
(root has GLOBAL_ROOT; alice, bob, ... have secret "<id>-secret"; erin is
locked). Usage:

    interop.py --config CONFIG.toml [--read-only]

CONFIG.toml is a NetAuth client configuration (core.server, core.port,
tls.certificate or tls.pwn_me), read by the client's own `with_config`.
Exit status 0 means every check passed.
"""

import argparse
import socket
import sys
from pathlib import Path

import netauth
from netauth import Capability, EntityMeta, error
from netauth.v2 import Action, RuleAction

CHECKS = 0


def check(what, cond, detail=""):
    global CHECKS
    CHECKS += 1
    if not cond:
        raise AssertionError(f"{what}: {detail}")
    print(f"ok {CHECKS} - {what}")


def raises(what, exc_type, fn, *args, **kwargs):
    try:
        got = fn(*args, **kwargs)
    except exc_type as e:
        check(what, True)
        return e
    except Exception as e:  # noqa: BLE001 - report the wrong kind
        raise AssertionError(f"{what}: expected {exc_type.__name__}, got {type(e).__name__}: {e}")
    raise AssertionError(f"{what}: expected {exc_type.__name__}, got answer {got!r}")


def patch_enum_conversion():
    """netauth 0.1.0 converts its enums with `_pb.v2.Action(self.value)`
    (likewise RuleAction and Capability), which raises TypeError with every
    protobuf release: EnumTypeWrapper is not callable. Every call that takes
    an Action, RuleAction or Capability is therefore broken in the published
    client. Patch only that conversion (to the enum's number, which is what
    the protobuf field takes) so the rest of those calls still runs through
    the client's own code."""
    try:
        Action.Read._into()
        return False
    except TypeError:
        pass
    for enum in (Action, RuleAction, Capability):
        enum._into = lambda self: self.value
    print("note: patched netauth 0.1.0's broken enum conversion (_into)", flush=True)
    return True


def client(cfg, entity=None, secret=None, **kw):
    return netauth.NetAuth.with_config(cfg, entity=entity, secret=secret, **kw)


def ids(entities):
    return sorted(e.id for e in entities)


def names(groups):
    return sorted(g.name for g in groups)


def run_read_only(cfg):
    with client(cfg) as anon, client(cfg, entity="root", secret="root-secret") as admin:
        check("status on a replica", anon.system_status().system_ok is True)
        check("reads work", anon.entity_info("alice").id == "alice")
        anon.auth_entity("alice", "alice-secret")
        check("auth works on a replica", True)
        raises("entity_create is read-only", error.ReadOnlyError,
               admin.entity_create, "x", "pw")
        raises("group_add_member is read-only", error.ReadOnlyError,
               admin.group_add_member, "staff", "carol")
        raises("auth_change_secret is read-only", error.ReadOnlyError,
               admin.auth_change_secret, "root", "new", old_secret="root-secret")


def run(cfg):
    anon = client(cfg)
    admin = client(cfg, entity="root", secret="root-secret", service_name="interop-admin")
    bob = client(cfg, entity="bob", secret="bob-secret")

    # System.
    status = anon.system_status()
    check("system_status: ok", status.system_ok is True, status)
    check("system_status: subsystems", len(status.subsystems) > 0 and all(s.ok for s in status.subsystems))
    anon.system_ping()
    check("system_ping", True)

    # Entity create: explicit and automatic numbers, duplicates, capabilities.
    admin.entity_create("pyuser", "py-secret", 7001)
    admin.entity_create("pyauto", "auto-secret")
    check("entity_create: auto number is the next free",
          anon.entity_info("pyauto").number == 7002, anon.entity_info("pyauto"))
    raises("entity_create: duplicate ID", error.ExistsError, admin.entity_create, "pyuser", "x", 7100)
    raises("entity_create: duplicate number", error.ExistsError, admin.entity_create, "other", "x", 1001)
    raises("entity_create: bob lacks CREATE_ENTITY", error.RequestorUnqualifiedError,
           bob.entity_create, "bobs", "x")

    # Entity info.
    e = anon.entity_info("pyuser")
    check("entity_info: id and number", (e.id, e.number) == ("pyuser", 7001), e)
    check("entity_info: secret redacted", e.secret == "<REDACTED>", e.secret)
    check("entity_info: not locked", e.meta.locked is False)
    check("entity_info: no groups", e.meta.groups == [])
    raises("entity_info: unknown", error.DoesNotExistError, anon.entity_info, "nobody")
    alice = anon.entity_info("alice")
    check("entity_info: fixture data", (alice.meta.display_name, alice.meta.home, alice.meta.shell)
          == ("Alice Anderson", "/home/alice", "/bin/bash"), alice.meta)

    # Entity update (the client sends Data.ID and always Locked=false).
    admin.entity_update("pyuser", EntityMeta(display_name="Py User", shell="/bin/sh"))
    e = anon.entity_info("pyuser")
    check("entity_update: fields set", (e.meta.display_name, e.meta.shell) == ("Py User", "/bin/sh"), e.meta)
    admin.entity_update("erin", EntityMeta(gecos="Erin E"))
    check("entity_update: does not unlock", anon.entity_info("erin").meta.locked is True)
    raises("entity_update: unknown", error.DoesNotExistError,
           admin.entity_update, "nobody", EntityMeta(shell="/bin/sh"))

    # Groups.
    admin.group_create("pygroup", "Python Group", number=7100)
    admin.group_create("pyall", "Python All", managed_by="admins")
    raises("group_create: duplicate", error.ExistsError, admin.group_create, "pygroup", "again")
    g, managed = anon.group_info("pygroup")
    check("group_info: group", (g.name, g.display_name, g.number) == ("pygroup", "Python Group", 7100), g)
    check("group_info: manages nothing", managed == [])
    g, managed = anon.group_info("admins")
    check("group_info: managed groups", names(managed) == ["helpdesk", "pyall"], names(managed))
    raises("group_info: unknown", error.DoesNotExistError, anon.group_info, "nogroup")
    check("group_info: auto number", anon.group_info("pyall")[0].number == 7101)

    # Search.
    check("entity_search: ID", ids(anon.entity_search("ID:pyuser")) == ["pyuser"])
    check("entity_search: range", ids(anon.entity_search("Number:>=7000")) == ["pyauto", "pyuser"])
    check("entity_search: combined ranges",
          ids(anon.entity_search("+Number:>=1002 +Number:<1004")) == ["bob", "carol"])
    check("entity_search: words", ids(anon.entity_search("meta.DisplayName:anderson")) == ["alice"])
    check("entity_search: direct groups", ids(anon.entity_search("meta.Groups:developers")) == ["alice", "dave"])
    check("entity_search: everything", len(anon.entity_search("*")) == 9)
    check("group_search: prefix", names(anon.group_search("Name:py*")) == ["pyall", "pygroup"])
    raises("entity_search: empty expression", error.InternalError, anon.entity_search, "")

    # KV on entities and groups.
    admin.entity_kv_add("pyuser", "phones", ["555-1", "555-2"])
    check("entity_kv_get", anon.entity_kv_get("pyuser", "phones") == {"phones": ["555-1", "555-2"]})
    raises("entity_kv_add: exists", error.ExistsError, admin.entity_kv_add, "pyuser", "phones", ["x"])
    admin.entity_kv_replace("pyuser", "phones", ["555-3"])
    admin.entity_kv_add("pyuser", "room", ["B12"])
    check("entity_kv_get: all", anon.entity_kv_get("pyuser", "*") == {"phones": ["555-3"], "room": ["B12"]})
    admin.entity_kv_del("pyuser", "room")
    raises("entity_kv_get: deleted key", error.DoesNotExistError, anon.entity_kv_get, "pyuser", "room")
    raises("entity_kv_add: bob unqualified", error.RequestorUnqualifiedError,
           bob.entity_kv_add, "pyuser", "k", ["v"])
    admin.group_kv_add("pygroup", "floor", ["3"])
    admin.group_kv_replace("pygroup", "floor", ["4", "5"])
    check("group_kv_get", anon.group_kv_get("pygroup", "floor") == {"floor": ["4", "5"]})
    admin.group_kv_del("pygroup", "floor")
    raises("group_kv_get: deleted", error.DoesNotExistError, anon.group_kv_get, "pygroup", "floor")

    # Untyped metadata and keys (these take an Action: see patch_enum_conversion).
    patch_enum_conversion()
    admin.entity_untyped_meta("pyuser", Action.Upsert, "office{1}", "B")
    admin.entity_untyped_meta("pyuser", Action.Upsert, "office{0}", "A")
    check("entity_untyped_meta: ordered read",
          anon.entity_untyped_meta("pyuser", Action.Read, "office") == {"office": ["A", "B"]})
    admin.entity_untyped_meta("pyuser", Action.ClearFuzzy, "office")
    check("entity_untyped_meta: cleared", anon.entity_untyped_meta("pyuser", Action.Read, "*") == {})
    admin.group_untyped_meta("pygroup", Action.Upsert, "color", "green")
    check("group_untyped_meta", anon.group_untyped_meta("pygroup", Action.Read, "color") == {"color": ["green"]})
    admin.entity_keys("pyuser", Action.Add, "ssh", "ssh-ed25519 AAAAC3Nz py@host")
    check("entity_keys: read",
          anon.entity_keys("pyuser", Action.Read, "*", "*") == {"SSH": ["ssh-ed25519 AAAAC3Nz py@host"]})

    # Memberships with rules; the sample fixture's INCLUDE/EXCLUDE rules first.
    check("group_members: fixture INCLUDE/EXCLUDE", ids(anon.group_members("engineering")) == ["alice"])
    check("entity_groups: fixture rules", names(anon.entity_groups("dave")) == ["developers", "interns"])
    admin.group_add_member("pygroup", "pyuser")
    admin.group_update_rules("pyall", RuleAction.Include, "pygroup")
    check("group_members: through INCLUDE", ids(anon.group_members("pyall")) == ["pyuser"])
    check("entity_groups: effective", names(anon.entity_groups("pyuser")) == ["pyall", "pygroup"])
    check("entity_info: direct groups only", anon.entity_info("pyuser").meta.groups == ["pygroup"])
    admin.group_update_rules("pyall", RuleAction.Include, "staff")
    admin.group_update_rules("pyall", RuleAction.Exclude, "developers")
    check("group_members: EXCLUDE wins, locked still member",
          ids(anon.group_members("pyall")) == ["bob", "erin", "frank", "pyuser"],
          ids(anon.group_members("pyall")))
    check("group_members: nested sample rules", ids(anon.group_members("engineering")) == ["alice"])
    check("group_members: unknown group is empty", anon.group_members("nogroup") == [])
    raises("entity_groups: unknown", error.DoesNotExistError, anon.entity_groups, "nobody")
    admin.group_del_member("pygroup", "pyuser")
    check("group_del_member", "pyuser" not in ids(anon.group_members("pyall")))
    frank = client(cfg, entity="frank", secret="frank-secret")
    frank.group_add_member("sre", "carol")
    check("managing group may add members", "carol" in ids(anon.group_members("sre")))
    raises("non-managing member may not", error.RequestorUnqualifiedError,
           frank.group_add_member, "staff", "carol")
    frank.close()

    # Authentication.
    anon.auth_entity("pyuser", "py-secret")
    check("auth_entity: right secret", True)
    raises("auth_entity: wrong secret", error.UnauthenticatedError, anon.auth_entity, "pyuser", "wrong")
    raises("auth_entity: unknown entity", error.UnauthenticatedError, anon.auth_entity, "nobody", "py-secret")
    raises("auth_entity: locked entity", error.UnauthenticatedError, anon.auth_entity, "erin", "erin-secret")

    # Tokens.
    tok = anon.auth_get_token("pyuser", "py-secret")
    check("auth_get_token: a token", isinstance(tok, str) and len(tok) > 20, tok)
    anon.auth_validate_token(tok)
    check("auth_validate_token: valid", True)
    raises("auth_validate_token: tampered", error.UnauthenticatedError, anon.auth_validate_token, tok + "x")
    raises("auth_get_token: wrong secret", error.UnauthenticatedError, anon.auth_get_token, "pyuser", "nope")

    # Change secret: self needs the old secret; others need CHANGE_ENTITY_SECRET.
    user = client(cfg, entity="pyuser", secret="py-secret")
    raises("auth_change_secret: wrong old secret", error.UnauthenticatedError,
           user.auth_change_secret, "pyuser", "py-new", old_secret="wrong")
    user.auth_change_secret("pyuser", "py-new", old_secret="py-secret")
    raises("auth_entity: old secret after change", error.UnauthenticatedError,
           anon.auth_entity, "pyuser", "py-secret")
    anon.auth_entity("pyuser", "py-new")
    check("auth_entity: new secret after change", True)
    user.close()
    raises("auth_change_secret: bob may not change others", error.RequestorUnqualifiedError,
           bob.auth_change_secret, "pyauto", "x")
    admin.auth_change_secret("pyauto", "auto-new")
    anon.auth_entity("pyauto", "auto-new")
    check("auth_change_secret: by an administrator", True)

    # Lock and unlock.
    admin.entity_lock("pyauto")
    raises("locked entity cannot authenticate", error.UnauthenticatedError,
           anon.auth_entity, "pyauto", "auto-new")
    check("entity_info: locked", anon.entity_info("pyauto").meta.locked is True)
    admin.entity_unlock("pyauto")
    anon.auth_entity("pyauto", "auto-new")
    check("unlocked entity authenticates", True)

    # Capabilities reach new tokens.
    admin.system_capabilities("pygroup", Action.Add, Capability.CreateGroup)
    admin.group_add_member("pygroup", "pyauto")
    auto = client(cfg, entity="pyauto", secret="auto-new")
    auto.group_create("autogroup", "Made by pyauto")
    check("group capability in a new token", anon.group_info("autogroup")[0].name == "autogroup")
    raises("system_capabilities: root only", error.RequestorUnqualifiedError,
           auto.system_capabilities, "pygroup", Action.Add, Capability.GlobalRoot)
    auto.close()

    # Destroy.
    admin.group_destroy("autogroup")
    raises("group_destroy: gone", error.DoesNotExistError, anon.group_info, "autogroup")
    admin.entity_destroy("pyauto")
    raises("entity_destroy: gone", error.DoesNotExistError, anon.entity_info, "pyauto")

    for c in (anon, admin, bob):
        c.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--read-only", action="store_true")
    args = p.parse_args()
    print(f"netauth {netauth.__version__} on {socket.gethostname()}", flush=True)
    try:
        if args.read_only:
            run_read_only(args.config)
        else:
            run(args.config)
    except AssertionError as e:
        print(f"not ok {CHECKS + 1} - {e}", flush=True)
        return 1
    print(f"{CHECKS} passed, 0 failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
