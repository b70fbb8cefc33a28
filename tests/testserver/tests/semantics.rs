//! The server's semantics, through the generated gRPC client over loopback.

mod common;

use std::time::Duration;

use common::*;
use netauth_proto::netauth::v2::{
    Action, AuthRequest, CapabilityRequest, Empty, EntityRequest, GroupRequest, GroupRulesRequest,
    Kv2Request, KvRequest, RuleAction, SearchRequest,
};
use netauth_proto::{Capability, Entity, EntityMeta, Group, KvData, KvValue};
use netauth_testserver::{Options, TestServer, REDACTED};
use tonic::Code;

fn create(id: &str, number: Option<i32>, secret: &str) -> EntityRequest {
    EntityRequest {
        entity: Some(Entity {
            id: Some(id.to_string()),
            number,
            secret: Some(secret.to_string()),
            meta: None,
        }),
        data: None,
    }
}

#[tokio::test]
async fn ping_status_and_metadata_are_recorded() {
    let server = sample_server();
    let mut c = client(&server).await;
    c.system_ping(req(Empty {}, None)).await.unwrap();
    let md = server.last_metadata().unwrap();
    assert_eq!(md.method, "SystemPing");
    assert_eq!(md.client_name.as_deref(), Some("test-host"));
    assert_eq!(md.service_name.as_deref(), Some("testserver-tests"));
    assert_eq!(md.authorization, None);
    let st = c
        .system_status(req(Empty {}, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.system_ok, Some(true));
    assert!(st.first_failure.is_none());
    assert!(!st.sub_systems.is_empty());
    // A call without metadata is recorded as such.
    c.system_ping(Empty {}).await.unwrap();
    let md = server.last_metadata().unwrap();
    assert_eq!(md.client_name, None);
    assert_eq!(md.service_name, None);
    assert_eq!(
        server.last_metadata_for("SystemStatus").unwrap().method,
        "SystemStatus"
    );
}

#[tokio::test]
async fn entity_create_checks_token_capability_and_duplicates() {
    let server = sample_server();
    let mut c = client(&server).await;
    let root = token(&mut c, "root", "root-secret").await;
    let bob = token(&mut c, "bob", "bob-secret").await;

    assert_eq!(
        code(c.entity_create(req(create("new", None, "pw"), None)).await),
        Code::InvalidArgument,
        "no token"
    );
    assert_eq!(
        code(
            c.entity_create(req(create("new", None, "pw"), Some("bogus")))
                .await
        ),
        Code::Unauthenticated,
        "bad token"
    );
    assert_eq!(
        code(
            c.entity_create(req(create("new", None, "pw"), Some(&bob)))
                .await
        ),
        Code::PermissionDenied,
        "bob lacks CREATE_ENTITY"
    );
    c.entity_create(req(create("new", Some(-1), "pw"), Some(&root)))
        .await
        .unwrap();
    assert_eq!(
        server.last_metadata().unwrap().authorization.as_deref(),
        Some(root.as_str())
    );
    // -1 picked the next free number above the largest (1006).
    assert_eq!(server.state().entity("new").unwrap().number, Some(1007));
    c.entity_create(req(create("new2", None, "pw"), Some(&root)))
        .await
        .unwrap();
    assert_eq!(server.state().entity("new2").unwrap().number, Some(1008));
    c.entity_create(req(create("zero", Some(0), "pw"), Some(&root)))
        .await
        .unwrap();
    assert_eq!(server.state().entity("zero").unwrap().number, Some(0));
    assert_eq!(
        code(
            c.entity_create(req(create("new", Some(4242), "pw"), Some(&root)))
                .await
        ),
        Code::AlreadyExists,
        "duplicate ID"
    );
    assert_eq!(
        code(
            c.entity_create(req(create("other", Some(1001), "pw"), Some(&root)))
                .await
        ),
        Code::AlreadyExists,
        "duplicate number"
    );
    // A member of admins (which holds CREATE_ENTITY) may create too: group
    // capabilities reach the token.
    server.state().add_member("bob", "admins");
    let bob = token(&mut c, "bob", "bob-secret").await;
    c.entity_create(req(create("by-bob", None, "pw"), Some(&bob)))
        .await
        .unwrap();
    // The secret is stored hashed and works.
    assert!(server.state().check_secret("by-bob", "pw"));
    c.auth_entity(req(auth("by-bob", "pw"), None))
        .await
        .unwrap();
}

#[tokio::test]
async fn entity_info_redacts_secret_and_shows_direct_groups_only() {
    let server = sample_server();
    let mut c = client(&server).await;
    let list = c
        .entity_info(req(entity_req("alice"), None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.entities.len(), 1);
    let alice = &list.entities[0];
    assert_eq!(alice.id.as_deref(), Some("alice"));
    assert_eq!(alice.number, Some(1001));
    assert_eq!(alice.secret.as_deref(), Some(REDACTED));
    let meta = alice.meta.as_ref().unwrap();
    assert_eq!(meta.locked, None, "never locked: field absent");
    assert_eq!(meta.shell.as_deref(), Some("/bin/bash"));
    assert_eq!(meta.graphical_shell, None);
    // Direct only: not engineering/everyone/sre.
    assert_eq!(sorted(meta.groups.clone()), vec!["developers", "staff"]);
    let carol = c
        .entity_info(req(entity_req("carol"), None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(carol.entities[0].meta.as_ref().unwrap().home, None);
    assert_eq!(
        code(c.entity_info(req(entity_req("nobody"), None)).await),
        Code::NotFound
    );

    // Lock then unlock: the field appears and stays.
    let root = token(&mut c, "root", "root-secret").await;
    c.entity_lock(req(entity_req("alice"), Some(&root)))
        .await
        .unwrap();
    let e = c.entity_info(req(entity_req("alice"), None)).await.unwrap();
    assert_eq!(
        e.into_inner().entities[0].meta.as_ref().unwrap().locked,
        Some(true)
    );
    c.entity_unlock(req(entity_req("alice"), Some(&root)))
        .await
        .unwrap();
    let e = c.entity_info(req(entity_req("alice"), None)).await.unwrap();
    assert_eq!(
        e.into_inner().entities[0].meta.as_ref().unwrap().locked,
        Some(false)
    );
    assert_eq!(
        code(c.entity_lock(req(entity_req("nobody"), Some(&root))).await),
        Code::NotFound
    );
    let bob = token(&mut c, "bob", "bob-secret").await;
    assert_eq!(
        code(c.entity_lock(req(entity_req("alice"), Some(&bob))).await),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn authentication_unknown_locked_and_wrong_look_the_same() {
    let server = sample_server();
    let mut c = client(&server).await;
    c.auth_entity(req(auth("alice", "alice-secret"), None))
        .await
        .unwrap();
    for (id, secret) in [
        ("alice", "wrong"),
        ("nobody", "alice-secret"),
        ("erin", "erin-secret"),
        ("alice", ""),
    ] {
        assert_eq!(
            code(c.auth_entity(req(auth(id, secret), None)).await),
            Code::Unauthenticated,
            "AuthEntity {id}"
        );
        assert_eq!(
            code(c.auth_get_token(req(auth(id, secret), None)).await),
            Code::Unauthenticated,
            "AuthGetToken {id}"
        );
    }
    let t = token(&mut c, "alice", "alice-secret").await;
    let validate = |t: &str| AuthRequest {
        token: Some(t.to_string()),
        ..Default::default()
    };
    c.auth_validate_token(req(validate(&t), None))
        .await
        .unwrap();
    assert_eq!(
        code(c.auth_validate_token(req(validate("x.y.z"), None)).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            c.auth_validate_token(req(AuthRequest::default(), None))
                .await
        ),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn tokens_expire() {
    let server = TestServer::start(Options {
        fixture: Some(sample_fixture()),
        token_lifetime: Duration::from_millis(300),
        ..Options::default()
    });
    let mut c = client(&server).await;
    let t = token(&mut c, "root", "root-secret").await;
    let v = AuthRequest {
        token: Some(t.clone()),
        ..Default::default()
    };
    c.auth_validate_token(req(v.clone(), None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        code(c.auth_validate_token(req(v, None)).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(c.entity_lock(req(entity_req("bob"), Some(&t))).await),
        Code::Unauthenticated,
        "expired token on a mutating call"
    );
}

fn change(target: &str, current: Option<&str>, new: &str) -> AuthRequest {
    AuthRequest {
        entity: Some(Entity {
            id: Some(target.to_string()),
            secret: current.map(str::to_string),
            ..Default::default()
        }),
        secret: Some(new.to_string()),
        token: None,
    }
}

#[tokio::test]
async fn change_secret_rules() {
    let server = sample_server();
    let mut c = client(&server).await;
    let alice = token(&mut c, "alice", "alice-secret").await;
    // Always needs a token.
    assert_eq!(
        code(
            c.auth_change_secret(req(change("alice", Some("alice-secret"), "n"), None))
                .await
        ),
        Code::InvalidArgument
    );
    // Self: the current secret is required and checked.
    assert_eq!(
        code(
            c.auth_change_secret(req(change("alice", None, "n"), Some(&alice)))
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            c.auth_change_secret(req(change("alice", Some("wrong"), "n"), Some(&alice)))
                .await
        ),
        Code::Unauthenticated
    );
    c.auth_change_secret(req(
        change("alice", Some("alice-secret"), "alice-new"),
        Some(&alice),
    ))
    .await
    .unwrap();
    assert_eq!(
        code(
            c.auth_entity(req(auth("alice", "alice-secret"), None))
                .await
        ),
        Code::Unauthenticated
    );
    c.auth_entity(req(auth("alice", "alice-new"), None))
        .await
        .unwrap();
    // Another entity: needs CHANGE_ENTITY_SECRET, the current secret is not asked.
    assert_eq!(
        code(
            c.auth_change_secret(req(change("bob", Some("bob-secret"), "n"), Some(&alice)))
                .await
        ),
        Code::PermissionDenied
    );
    server
        .state()
        .set_capability("alice", Capability::ChangeEntitySecret);
    let alice = token(&mut c, "alice", "alice-new").await;
    c.auth_change_secret(req(change("bob", None, "bob-new"), Some(&alice)))
        .await
        .unwrap();
    assert!(server.state().check_secret("bob", "bob-new"));
    // GLOBAL_ROOT may too.
    let root = token(&mut c, "root", "root-secret").await;
    c.auth_change_secret(req(change("carol", None, "carol-new"), Some(&root)))
        .await
        .unwrap();
    assert!(server.state().check_secret("carol", "carol-new"));
}

#[tokio::test]
async fn memberships_expand_with_exclusion_winning() {
    let server = sample_server();
    let mut c = client(&server).await;
    let cm = c.clone();
    let members = move |g: &str| {
        let mut c = cm.clone();
        let g = g.to_string();
        async move {
            ids(&c
                .group_members(req(group_req(&g), None))
                .await
                .unwrap()
                .into_inner()
                .entities)
        }
    };
    assert_eq!(
        members("engineering").await,
        vec!["alice"],
        "dave excluded as intern"
    );
    assert_eq!(members("sre").await, vec!["alice"], "nested include");
    assert_eq!(
        members("everyone").await,
        vec!["alice", "bob", "carol", "erin", "frank"]
    );
    assert!(
        members("staff").await.contains(&"erin".to_string()),
        "locked still a member"
    );
    assert!(
        members("no-such-group").await.is_empty(),
        "unknown group: empty, no error"
    );
    let cg = c.clone();
    let groups = move |id: &str| {
        let mut c = cg.clone();
        let id = id.to_string();
        async move {
            names(
                &c.entity_groups(req(entity_req(&id), None))
                    .await
                    .unwrap()
                    .into_inner()
                    .groups,
            )
        }
    };
    assert_eq!(groups("dave").await, vec!["developers", "interns"]);
    assert_eq!(
        groups("alice").await,
        vec!["developers", "engineering", "everyone", "sre", "staff"]
    );
    assert_eq!(
        code(c.entity_groups(req(entity_req("nobody"), None)).await),
        Code::NotFound
    );
    // Members come back redacted.
    let m = c
        .group_members(req(group_req("staff"), None))
        .await
        .unwrap()
        .into_inner();
    assert!(m
        .entities
        .iter()
        .all(|e| e.secret.as_deref() == Some(REDACTED)));

    // Rules through the API: a cycle, and exclusion beating a direct membership.
    let root = token(&mut c, "root", "root-secret").await;
    let rule = |g: &str, action: RuleAction, t: &str| GroupRulesRequest {
        group: Some(Group {
            name: Some(g.to_string()),
            ..Default::default()
        }),
        target: Some(Group {
            name: Some(t.to_string()),
            ..Default::default()
        }),
        rule_action: Some(action as i32),
    };
    c.group_update_rules(req(
        rule("contractors", RuleAction::Include, "everyone"),
        Some(&root),
    ))
    .await
    .unwrap();
    assert_eq!(
        members("contractors").await,
        vec!["alice", "bob", "carol", "erin", "frank"],
        "cycle everyone <-> contractors terminates"
    );
    c.group_update_rules(req(
        rule("everyone", RuleAction::Exclude, "developers"),
        Some(&root),
    ))
    .await
    .unwrap();
    c.group_add_member(req(member_req("alice", "everyone"), Some(&root)))
        .await
        .unwrap();
    assert_eq!(
        members("everyone").await,
        vec!["bob", "carol", "erin", "frank"],
        "exclusion wins over the direct membership"
    );
    c.group_update_rules(req(
        rule("everyone", RuleAction::RemoveRule, "developers"),
        Some(&root),
    ))
    .await
    .unwrap();
    assert!(members("everyone").await.contains(&"alice".to_string()));
    let info = c
        .group_info(req(group_req("everyone"), None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        sorted(info.groups[0].expansions.clone()),
        vec!["INCLUDE:contractors", "INCLUDE:staff"]
    );
    assert_eq!(
        code(
            c.group_update_rules(req(rule("nope", RuleAction::Include, "staff"), Some(&root)))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            c.group_update_rules(req(rule("staff", RuleAction::Include, "nope"), Some(&root)))
                .await
        ),
        Code::NotFound
    );
    let mut bad = rule("staff", RuleAction::Include, "interns");
    bad.rule_action = None;
    assert_eq!(
        code(c.group_update_rules(req(bad, Some(&root))).await),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn add_and_remove_members_and_managing_groups() {
    let server = sample_server();
    let mut c = client(&server).await;
    let frank = token(&mut c, "frank", "frank-secret").await;
    let bob = token(&mut c, "bob", "bob-secret").await;
    let root = token(&mut c, "root", "root-secret").await;
    // frank is in helpdesk, which manages sre.
    c.group_add_member(req(member_req("bob", "sre"), Some(&frank)))
        .await
        .unwrap();
    assert_eq!(
        server.state().effective_members("sre"),
        vec!["alice", "bob"]
    );
    c.group_del_member(req(member_req("bob", "sre"), Some(&frank)))
        .await
        .unwrap();
    assert_eq!(server.state().effective_members("sre"), vec!["alice"]);
    let upd = GroupRequest {
        group: Some(Group {
            name: Some("sre".into()),
            display_name: Some("SRE team".into()),
            ..Default::default()
        }),
        data: None,
    };
    c.group_update(req(upd.clone(), Some(&frank)))
        .await
        .unwrap();
    assert_eq!(
        server.state().group("sre").unwrap().display_name.as_deref(),
        Some("SRE team")
    );
    // ... but not staff, which nobody manages, and bob manages nothing.
    assert_eq!(
        code(
            c.group_add_member(req(member_req("bob", "staff"), Some(&frank)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(c.group_update(req(upd.clone(), Some(&bob))).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            c.group_add_member(req(member_req("bob", "sre"), None))
                .await
        ),
        Code::InvalidArgument
    );
    // With MODIFY_GROUP_MEMBERS: any group; unknown names are internal errors.
    c.group_add_member(req(member_req("carol", "staff"), Some(&root)))
        .await
        .unwrap();
    assert!(server
        .state()
        .effective_members("staff")
        .contains(&"carol".to_string()));
    assert_eq!(
        code(
            c.group_add_member(req(member_req("carol", "nope"), Some(&root)))
                .await
        ),
        Code::Internal
    );
    assert_eq!(
        code(
            c.group_add_member(req(member_req("nobody", "staff"), Some(&root)))
                .await
        ),
        Code::Internal
    );
    // GroupUpdate with the new values in Data also works.
    let upd = GroupRequest {
        group: Some(Group {
            name: Some("staff".into()),
            ..Default::default()
        }),
        data: Some(Group {
            display_name: Some("Everybody employed".into()),
            managed_by: Some("helpdesk".into()),
            ..Default::default()
        }),
    };
    c.group_update(req(upd, Some(&root))).await.unwrap();
    let g = server.state().group("staff").unwrap();
    assert_eq!(g.display_name.as_deref(), Some("Everybody employed"));
    assert_eq!(g.managed_by.as_deref(), Some("helpdesk"));
    assert_eq!(g.number, Some(5001));
    // Now frank manages staff.
    c.group_add_member(req(member_req("dave", "staff"), Some(&frank)))
        .await
        .unwrap();
    assert_eq!(
        code(c.group_update(req(group_req("nope"), Some(&root))).await),
        Code::NotFound
    );
}

#[tokio::test]
async fn groups_create_info_search_destroy() {
    let server = sample_server();
    let mut c = client(&server).await;
    let root = token(&mut c, "root", "root-secret").await;
    let bob = token(&mut c, "bob", "bob-secret").await;
    let create = |name: &str, number: Option<i32>, managed_by: Option<&str>| GroupRequest {
        group: Some(Group {
            name: Some(name.into()),
            display_name: Some(format!("{name} group")),
            number,
            managed_by: managed_by.map(str::to_string),
            ..Default::default()
        }),
        data: None,
    };
    assert_eq!(
        code(
            c.group_create(req(create("ops", None, None), Some(&bob)))
                .await
        ),
        Code::PermissionDenied
    );
    c.group_create(req(create("ops", Some(-1), Some("staff")), Some(&root)))
        .await
        .unwrap();
    assert_eq!(server.state().group("ops").unwrap().number, Some(5009));
    assert_eq!(
        code(
            c.group_create(req(create("ops", None, None), Some(&root)))
                .await
        ),
        Code::AlreadyExists
    );
    assert_eq!(
        code(
            c.group_create(req(create("other", Some(5001), None), Some(&root)))
                .await
        ),
        Code::AlreadyExists
    );
    // GroupInfo: the group first, then the groups it manages.
    let info = c
        .group_info(req(group_req("staff"), None))
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(info[0].name.as_deref(), Some("staff"));
    assert_eq!(names(&info[1..]), vec!["ops"]);
    assert_eq!(
        code(c.group_info(req(group_req("nope"), None)).await),
        Code::NotFound
    );
    let search = |e: &str| SearchRequest {
        expression: Some(e.into()),
    };
    let all = c
        .group_search(req(search("*"), None))
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(all.len(), 10);
    let managed = c
        .group_search(req(search("ManagedBy:helpdesk"), None))
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(names(&managed), vec!["sre"]);
    let by_name = c
        .group_search(req(search("Name:dev*"), None))
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(names(&by_name), vec!["developers"]);
    let by_number = c
        .group_search(req(search("+Number:>=5003 +Number:<5005"), None))
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(names(&by_number), vec!["contractors", "interns"]);
    assert_eq!(
        code(c.group_search(req(search(""), None)).await),
        Code::Internal
    );
    assert_eq!(
        code(c.group_destroy(req(group_req("ops"), Some(&bob))).await),
        Code::PermissionDenied
    );
    c.group_destroy(req(group_req("ops"), Some(&root)))
        .await
        .unwrap();
    assert_eq!(
        code(c.group_destroy(req(group_req("ops"), Some(&root))).await),
        Code::NotFound
    );
}

#[tokio::test]
async fn entity_update_and_destroy() {
    let server = sample_server();
    let mut c = client(&server).await;
    let root = token(&mut c, "root", "root-secret").await;
    let bob = token(&mut c, "bob", "bob-secret").await;
    // Fact-sheet shape: Entity.ID names the target, Data.meta the fields.
    let upd = EntityRequest {
        entity: Some(entity("bob")),
        data: Some(Entity {
            meta: Some(EntityMeta {
                shell: Some("/bin/fish".into()),
                locked: Some(true),
                groups: vec!["admins".into()],
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    assert_eq!(
        code(c.entity_update(req(upd.clone(), Some(&bob))).await),
        Code::PermissionDenied
    );
    c.entity_update(req(upd, Some(&root))).await.unwrap();
    let meta = server.state().entity("bob").unwrap().meta.unwrap();
    assert_eq!(meta.shell.as_deref(), Some("/bin/fish"));
    assert_eq!(
        meta.home.as_deref(),
        Some("/home/bob"),
        "unset fields unchanged"
    );
    assert_eq!(meta.locked, None, "lock has its own calls");
    assert_eq!(
        meta.groups,
        vec!["staff"],
        "memberships have their own calls"
    );
    // NetAuth's (and its Python client's) shape: Data.ID.
    let upd = EntityRequest {
        entity: None,
        data: Some(Entity {
            id: Some("bob".into()),
            meta: Some(EntityMeta {
                gecos: Some("Bob B".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    c.entity_update(req(upd, Some(&root))).await.unwrap();
    assert_eq!(
        server
            .state()
            .entity("bob")
            .unwrap()
            .meta
            .unwrap()
            .gecos
            .as_deref(),
        Some("Bob B")
    );
    let upd = EntityRequest {
        entity: Some(entity("nobody")),
        data: Some(Entity::default()),
    };
    assert_eq!(
        code(c.entity_update(req(upd, Some(&root))).await),
        Code::NotFound
    );
    assert_eq!(
        code(c.entity_destroy(req(entity_req("bob"), Some(&bob))).await),
        Code::PermissionDenied
    );
    c.entity_destroy(req(entity_req("bob"), Some(&root)))
        .await
        .unwrap();
    assert_eq!(
        code(c.entity_info(req(entity_req("bob"), None)).await),
        Code::NotFound
    );
    assert_eq!(
        code(c.entity_destroy(req(entity_req("bob"), Some(&root))).await),
        Code::NotFound
    );
    // Its number is free again.
    c.entity_create(req(create("bob2", Some(1002), "pw"), Some(&root)))
        .await
        .unwrap();
}

fn kv2(target: &str, key: &str, values: &[&str]) -> Kv2Request {
    Kv2Request {
        target: Some(target.into()),
        data: Some(KvData {
            key: key.into(),
            values: values
                .iter()
                .enumerate()
                .map(|(i, v)| KvValue {
                    value: v.to_string(),
                    index: Some(i as i32),
                })
                .collect(),
        }),
    }
}

fn values(kv: &[KvData]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = kv
        .iter()
        .map(|d| {
            (
                d.key.clone(),
                d.values.iter().map(|v| v.value.clone()).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn entity_and_group_kv() {
    let server = sample_server();
    let mut c = client(&server).await;
    let root = token(&mut c, "root", "root-secret").await;
    let bob = token(&mut c, "bob", "bob-secret").await;
    assert_eq!(
        code(
            c.entity_kv_add(req(kv2("alice", "phone", &["1"]), Some(&bob)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            c.entity_kv_add(req(kv2("alice", "phone", &["1"]), None))
                .await
        ),
        Code::InvalidArgument
    );
    c.entity_kv_add(req(
        kv2("alice", "phones", &["555-1", "555-2"]),
        Some(&root),
    ))
    .await
    .unwrap();
    c.entity_kv_add(req(kv2("alice", "room", &["B12"]), Some(&root)))
        .await
        .unwrap();
    assert_eq!(
        code(
            c.entity_kv_add(req(kv2("alice", "room", &["B13"]), Some(&root)))
                .await
        ),
        Code::AlreadyExists
    );
    let got = c
        .entity_kv_get(req(kv2("alice", "phones", &[]), None))
        .await
        .unwrap()
        .into_inner()
        .kv_data;
    assert_eq!(
        values(&got),
        vec![("phones".into(), vec!["555-1".into(), "555-2".into()])]
    );
    let all = c
        .entity_kv_get(req(kv2("alice", "*", &[]), None))
        .await
        .unwrap()
        .into_inner()
        .kv_data;
    assert_eq!(all.len(), 2);
    c.entity_kv_replace(req(kv2("alice", "room", &["C1", "C2"]), Some(&root)))
        .await
        .unwrap();
    let got = c
        .entity_kv_get(req(kv2("alice", "room", &[]), None))
        .await
        .unwrap()
        .into_inner()
        .kv_data;
    assert_eq!(
        values(&got),
        vec![("room".into(), vec!["C1".into(), "C2".into()])]
    );
    assert_eq!(
        code(
            c.entity_kv_replace(req(kv2("alice", "nope", &["x"]), Some(&root)))
                .await
        ),
        Code::NotFound
    );
    c.entity_kv_del(req(kv2("alice", "room", &[]), Some(&root)))
        .await
        .unwrap();
    assert_eq!(
        code(c.entity_kv_get(req(kv2("alice", "room", &[]), None)).await),
        Code::NotFound
    );
    assert_eq!(
        code(
            c.entity_kv_del(req(kv2("alice", "room", &[]), Some(&root)))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(c.entity_kv_get(req(kv2("nobody", "*", &[]), None)).await),
        Code::NotFound
    );
    // Groups.
    c.group_kv_add(req(kv2("staff", "floor", &["3"]), Some(&root)))
        .await
        .unwrap();
    assert_eq!(
        code(
            c.group_kv_add(req(kv2("staff", "floor", &["4"]), Some(&root)))
                .await
        ),
        Code::AlreadyExists
    );
    c.group_kv_replace(req(kv2("staff", "floor", &["4"]), Some(&root)))
        .await
        .unwrap();
    let got = c
        .group_kv_get(req(kv2("staff", "floor", &[]), None))
        .await
        .unwrap()
        .into_inner()
        .kv_data;
    assert_eq!(values(&got), vec![("floor".into(), vec!["4".into()])]);
    c.group_kv_del(req(kv2("staff", "floor", &[]), Some(&root)))
        .await
        .unwrap();
    assert_eq!(
        code(c.group_kv_get(req(kv2("staff", "floor", &[]), None)).await),
        Code::NotFound
    );
    assert_eq!(
        code(
            c.group_kv_add(req(kv2("nope", "k", &["v"]), Some(&root)))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            c.group_kv_add(req(kv2("staff", "k", &["v"]), Some(&bob)))
                .await
        ),
        Code::PermissionDenied
    );
}

fn kv1(target: &str, action: Action, key: &str, value: &str) -> KvRequest {
    KvRequest {
        target: Some(target.into()),
        action: Some(action as i32),
        key: Some(key.into()),
        value: Some(value.into()),
    }
}

#[tokio::test]
async fn untyped_meta_and_keys() {
    let server = sample_server();
    let mut c = client(&server).await;
    let root = token(&mut c, "root", "root-secret").await;
    let alice = token(&mut c, "alice", "alice-secret").await;
    let read = |c: &mut Client, key: &str| {
        let mut c = c.clone();
        let key = key.to_string();
        async move {
            c.entity_um(req(kv1("alice", Action::Read, &key, ""), None))
                .await
                .unwrap()
                .into_inner()
                .strings
        }
    };
    assert_eq!(read(&mut c, "*").await, vec!["phone:555-0101"]);
    for (k, v) in [
        ("office{1}", "two"),
        ("office{0}", "one"),
        ("phone", "555-0199"),
    ] {
        c.entity_um(req(kv1("alice", Action::Upsert, k, v), Some(&root)))
            .await
            .unwrap();
    }
    assert_eq!(
        read(&mut c, "office").await,
        vec!["office{0}:one", "office{1}:two"]
    );
    assert_eq!(read(&mut c, "phone").await, vec!["phone:555-0199"]);
    c.entity_um(req(
        kv1("alice", Action::Clearexact, "office{0}", ""),
        Some(&root),
    ))
    .await
    .unwrap();
    assert_eq!(read(&mut c, "office").await, vec!["office{1}:two"]);
    c.entity_um(req(
        kv1("alice", Action::Clearfuzzy, "office", ""),
        Some(&root),
    ))
    .await
    .unwrap();
    assert!(read(&mut c, "office").await.is_empty());
    assert_eq!(
        code(
            c.entity_um(req(kv1("alice", Action::Upsert, "k", "v"), Some(&alice)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            c.entity_um(req(kv1("alice", Action::Add, "k", "v"), Some(&root)))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            c.entity_um(req(kv1("nobody", Action::Read, "*", ""), None))
                .await
        ),
        Code::NotFound
    );
    // Group untyped meta: frank manages sre through helpdesk.
    let frank = token(&mut c, "frank", "frank-secret").await;
    c.group_um(req(
        kv1("sre", Action::Upsert, "oncall", "yes"),
        Some(&frank),
    ))
    .await
    .unwrap();
    let got = c
        .group_um(req(kv1("sre", Action::Read, "*", ""), None))
        .await
        .unwrap()
        .into_inner()
        .strings;
    assert_eq!(got, vec!["oncall:yes"]);
    assert_eq!(
        code(
            c.group_um(req(kv1("staff", Action::Upsert, "k", "v"), Some(&frank)))
                .await
        ),
        Code::PermissionDenied
    );

    // Keys: read all or by type; an entity may manage its own keys.
    let keys = |c: &mut Client, kind: &str| {
        let mut c = c.clone();
        let kind = kind.to_string();
        async move {
            c.entity_keys(req(kv1("alice", Action::Read, &kind, ""), None))
                .await
                .unwrap()
                .into_inner()
                .strings
        }
    };
    assert_eq!(keys(&mut c, "*").await.len(), 1);
    c.entity_keys(req(
        kv1("alice", Action::Add, "gpg", "ABCDEF"),
        Some(&alice),
    ))
    .await
    .unwrap();
    assert_eq!(keys(&mut c, "GPG").await, vec!["GPG:ABCDEF"]);
    assert_eq!(keys(&mut c, "ssh").await.len(), 1);
    assert_eq!(keys(&mut c, "*").await.len(), 2);
    c.entity_keys(req(
        kv1("alice", Action::Drop, "GPG", "ABCDEF"),
        Some(&root),
    ))
    .await
    .unwrap();
    assert!(keys(&mut c, "GPG").await.is_empty());
    let bob = token(&mut c, "bob", "bob-secret").await;
    assert_eq!(
        code(
            c.entity_keys(req(kv1("alice", Action::Add, "SSH", "x"), Some(&bob)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            c.entity_keys(req(kv1("alice", Action::Upsert, "SSH", "x"), Some(&root)))
                .await
        ),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn system_capabilities_reach_new_tokens() {
    let server = sample_server();
    let mut c = client(&server).await;
    let root = token(&mut c, "root", "root-secret").await;
    let bob = token(&mut c, "bob", "bob-secret").await;
    let cap = |target: &str, direct: bool, action: Action| CapabilityRequest {
        capability: Some(Capability::LockEntity as i32),
        direct: Some(direct),
        target: Some(target.into()),
        action: Some(action as i32),
    };
    assert_eq!(
        code(
            c.system_capabilities(req(cap("staff", false, Action::Add), Some(&bob)))
                .await
        ),
        Code::PermissionDenied
    );
    c.system_capabilities(req(cap("staff", false, Action::Add), Some(&root)))
        .await
        .unwrap();
    // Old tokens keep their claims; a new one carries the group's capability.
    assert_eq!(
        code(c.entity_lock(req(entity_req("carol"), Some(&bob))).await),
        Code::PermissionDenied
    );
    let bob = token(&mut c, "bob", "bob-secret").await;
    c.entity_lock(req(entity_req("carol"), Some(&bob)))
        .await
        .unwrap();
    c.system_capabilities(req(cap("staff", false, Action::Drop), Some(&root)))
        .await
        .unwrap();
    c.system_capabilities(req(cap("carol", true, Action::Add), Some(&root)))
        .await
        .unwrap();
    assert_eq!(
        server
            .state()
            .entity("carol")
            .unwrap()
            .meta
            .unwrap()
            .capabilities,
        vec![Capability::LockEntity as i32]
    );
    assert_eq!(
        code(
            c.system_capabilities(req(cap("carol", true, Action::Upsert), Some(&root)))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            c.system_capabilities(req(cap("nobody", true, Action::Add), Some(&root)))
                .await
        ),
        Code::Internal
    );
}

#[tokio::test]
async fn read_only_refuses_every_mutating_call() {
    let server = TestServer::start(Options {
        fixture: Some(sample_fixture()),
        read_only: true,
        ..Options::default()
    });
    let mut c = client(&server).await;
    let t = token(&mut c, "root", "root-secret").await;
    let t = Some(t.as_str());
    let um = |a| kv1("alice", a, "k", "v");
    let checks: Vec<(&str, Code)> = vec![
        (
            "EntityCreate",
            code(c.entity_create(req(create("x", None, "p"), t)).await),
        ),
        (
            "EntityUpdate",
            code(c.entity_update(req(entity_req("alice"), t)).await),
        ),
        (
            "EntityUM",
            code(c.entity_um(req(um(Action::Upsert), t)).await),
        ),
        (
            "EntityKVAdd",
            code(c.entity_kv_add(req(kv2("alice", "k", &["v"]), t)).await),
        ),
        (
            "EntityKVDel",
            code(c.entity_kv_del(req(kv2("alice", "k", &[]), t)).await),
        ),
        (
            "EntityKVReplace",
            code(c.entity_kv_replace(req(kv2("alice", "k", &["v"]), t)).await),
        ),
        (
            "EntityKeys",
            code(
                c.entity_keys(req(kv1("alice", Action::Add, "SSH", "k"), t))
                    .await,
            ),
        ),
        (
            "EntityDestroy",
            code(c.entity_destroy(req(entity_req("bob"), t)).await),
        ),
        (
            "EntityLock",
            code(c.entity_lock(req(entity_req("bob"), t)).await),
        ),
        (
            "EntityUnlock",
            code(c.entity_unlock(req(entity_req("bob"), t)).await),
        ),
        (
            "AuthChangeSecret",
            code(
                c.auth_change_secret(req(change("root", Some("root-secret"), "n"), t))
                    .await,
            ),
        ),
        (
            "GroupCreate",
            code(c.group_create(req(group_req("new"), t)).await),
        ),
        (
            "GroupUpdate",
            code(c.group_update(req(group_req("staff"), t)).await),
        ),
        (
            "GroupUM",
            code(
                c.group_um(req(kv1("staff", Action::Upsert, "k", "v"), t))
                    .await,
            ),
        ),
        (
            "GroupKVAdd",
            code(c.group_kv_add(req(kv2("staff", "k", &["v"]), t)).await),
        ),
        (
            "GroupKVDel",
            code(c.group_kv_del(req(kv2("staff", "k", &[]), t)).await),
        ),
        (
            "GroupKVReplace",
            code(c.group_kv_replace(req(kv2("staff", "k", &["v"]), t)).await),
        ),
        (
            "GroupUpdateRules",
            code(
                c.group_update_rules(req(
                    GroupRulesRequest {
                        group: Some(Group {
                            name: Some("staff".into()),
                            ..Default::default()
                        }),
                        target: Some(Group {
                            name: Some("interns".into()),
                            ..Default::default()
                        }),
                        rule_action: Some(RuleAction::Include as i32),
                    },
                    t,
                ))
                .await,
            ),
        ),
        (
            "GroupAddMember",
            code(c.group_add_member(req(member_req("bob", "sre"), t)).await),
        ),
        (
            "GroupDelMember",
            code(c.group_del_member(req(member_req("bob", "staff"), t)).await),
        ),
        (
            "GroupDestroy",
            code(c.group_destroy(req(group_req("sre"), t)).await),
        ),
        (
            "SystemCapabilities",
            code(
                c.system_capabilities(req(
                    CapabilityRequest {
                        capability: Some(Capability::LockEntity as i32),
                        direct: Some(true),
                        target: Some("bob".into()),
                        action: Some(Action::Add as i32),
                    },
                    t,
                ))
                .await,
            ),
        ),
    ];
    for (method, got) in &checks {
        assert_eq!(*got, Code::Unimplemented, "{method}");
    }
    assert_eq!(checks.len(), 22);
    // Reads still work, including the read actions of UM and keys.
    c.entity_info(req(entity_req("alice"), None)).await.unwrap();
    c.entity_um(req(kv1("alice", Action::Read, "*", ""), None))
        .await
        .unwrap();
    c.entity_keys(req(kv1("alice", Action::Read, "*", ""), None))
        .await
        .unwrap();
    c.auth_entity(req(auth("alice", "alice-secret"), None))
        .await
        .unwrap();
    assert_eq!(server.state().entity_count(), 7, "nothing changed");
}
