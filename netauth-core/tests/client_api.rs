//! Every client method against the test server (plain text): success and
//! each documented error path.

#[path = "client_support/mod.rs"]
mod support;

use netauth_core::types::{
    Action, Capability, EntityMeta, ExpansionMode, Group, KvData, RuleAction,
};
use netauth_core::{Error, Secret, Token};
use support::*;

// ----- system -----

#[tokio::test]
async fn ping_and_status() {
    let server = plain_server();
    let client = builder(&server).build().unwrap();
    client.system_ping().await.unwrap();
    let status = client.system_status().await.unwrap();
    assert!(status.system_ok);
    assert!(status.first_failure.is_none());
    assert!(!status.sub_systems.is_empty());
    assert!(status
        .sub_systems
        .iter()
        .all(|s| s.ok && !s.name.is_empty()));
}

#[tokio::test]
async fn system_capabilities_add_and_drop() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    // Direct capability on an entity: eve may now create groups.
    admin
        .system_capabilities("eve", Action::Add, Capability::CreateGroup, true)
        .await
        .unwrap();
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    eve.group_create("eves", "Eve's", None, None).await.unwrap();
    admin
        .system_capabilities("eve", Action::Drop, Capability::CreateGroup, true)
        .await
        .unwrap();
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve
        .group_create("eves2", "x", None, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");

    // On a group: members of helpdesk (dave) get CREATE_ENTITY.
    admin
        .system_capabilities("helpdesk", Action::Add, Capability::CreateEntity, false)
        .await
        .unwrap();
    let info = admin.group_info("helpdesk").await.unwrap();
    assert_eq!(info.group.capabilities, vec![Capability::CreateEntity]);
    let dave = as_entity(&server, "dave", "dave-secret").build().unwrap();
    dave.entity_create("frank", None, &Secret::new("frank-secret"))
        .await
        .unwrap();

    // Needs GLOBAL_ROOT.
    let e = dave
        .system_capabilities("dave", Action::Add, Capability::GlobalRoot, true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
    // A bad action is a malformed request.
    let e = admin
        .system_capabilities("eve", Action::Read, Capability::LockEntity, true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::MalformedRequest { .. }), "{e:?}");
}

// ----- entities -----

#[tokio::test]
async fn entity_info_reads_every_field() {
    let server = plain_server();
    let client = builder(&server).build().unwrap();
    let alice = client.entity_info("alice").await.unwrap();
    assert_eq!(alice.id, "alice");
    assert_eq!(alice.number, Some(1001));
    let m = &alice.meta;
    assert_eq!(m.primary_group.as_deref(), Some("staff"));
    assert_eq!(m.gecos.as_deref(), Some("Alice Anders"));
    assert_eq!(m.legal_name.as_deref(), Some("Alice B. Anders"));
    assert_eq!(m.display_name.as_deref(), Some("Alice"));
    assert_eq!(m.home.as_deref(), Some("/home/alice"));
    assert_eq!(m.shell.as_deref(), Some("/bin/bash"));
    assert!(!m.locked);
    assert_eq!(m.groups, vec!["staff".to_string()]);
    assert_eq!(m.keys.len(), 1);
    assert!(m.keys[0].starts_with("SSH:ssh-ed25519 "));
    assert_eq!(m.untyped_meta, vec!["phone:555-0101".to_string()]);
    // Nothing of the redacted secret leaks into the value.
    assert!(!format!("{alice:?}").contains("REDACTED"));

    let carol = client.entity_info("carol").await.unwrap();
    assert!(carol.meta.locked);
    let eve = client.entity_info("eve").await.unwrap();
    assert_eq!(eve.meta.shell, None);
    assert_eq!(eve.meta.home, None);
    assert!(eve.meta.groups.is_empty());

    let e = client.entity_info("nobody").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    assert!(e.is_not_found());
}

#[tokio::test]
async fn entity_search_star_field_and_empty() {
    let server = plain_server();
    let client = builder(&server).build().unwrap();
    let all = client.entity_search("*").await.unwrap();
    assert_eq!(
        ids(&all),
        sorted(&["admin", "alice", "bob", "carol", "dave", "eve"])
    );
    let one = client.entity_search("ID:alice").await.unwrap();
    assert_eq!(ids(&one), vec!["alice"]);
    let by_number = client.entity_search("Number:1002").await.unwrap();
    assert_eq!(ids(&by_number), vec!["bob"]);
    let none = client.entity_search("ID:nobody").await.unwrap();
    assert!(none.is_empty());
    let e = client.entity_search("").await.unwrap_err();
    assert!(matches!(e, Error::Internal { .. }), "{e:?}");
}

#[tokio::test]
async fn entity_create_and_its_errors() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    admin
        .entity_create("frank", Some(1100), &Secret::new("frank-secret"))
        .await
        .unwrap();
    let frank = admin.entity_info("frank").await.unwrap();
    assert_eq!(frank.number, Some(1100));
    assert!(server.state().check_secret("frank", "frank-secret"));

    // No number: the server picks a free one.
    admin
        .entity_create("grace", None, &Secret::new("grace-secret"))
        .await
        .unwrap();
    let grace = admin.entity_info("grace").await.unwrap();
    let n = grace.number.expect("a number was assigned");
    assert!(n > 0 && n != 1100 && n != 1001, "{n}");

    // Duplicate ID, duplicate number.
    let e = admin
        .entity_create("frank", None, &Secret::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e:?}");
    let e = admin
        .entity_create("henry", Some(1100), &Secret::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e:?}");

    // Without CREATE_ENTITY.
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve
        .entity_create("ivan", None, &Secret::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
    assert!(e.is_permission_denied());

    // Wrong secret for the acting entity: no token.
    let wrong = as_entity(&server, "admin", "not-the-secret")
        .build()
        .unwrap();
    let e = wrong
        .entity_create("ivan", None, &Secret::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");

    // No entity configured at all.
    let anonymous = builder(&server).build().unwrap();
    let e = anonymous
        .entity_create("ivan", None, &Secret::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NoEntity), "{e:?}");
    // An entity but no secret.
    let no_secret = builder(&server).entity("admin").build().unwrap();
    let e = no_secret
        .entity_create("ivan", None, &Secret::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NoSecret { .. }), "{e:?}");
    assert!(server.state().entity("ivan").is_none());
}

#[tokio::test]
async fn writes_to_a_read_only_server_fail_as_read_only() {
    let server = netauth_testserver::TestServer::start(netauth_testserver::Options {
        read_only: true,
        ..options()
    });
    let admin = admin(&server).build().unwrap();
    let e = admin
        .entity_create("frank", None, &Secret::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ReadOnly { .. }), "{e:?}");
    let e = admin.group_destroy("staff").await.unwrap_err();
    assert!(matches!(e, Error::ReadOnly { .. }), "{e:?}");
    // Reads still work.
    admin.entity_info("alice").await.unwrap();
}

#[tokio::test]
async fn entity_update_changes_only_given_fields() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    let meta = EntityMeta {
        shell: Some("/bin/zsh".into()),
        gecos: Some("Alice Z".into()),
        ..Default::default()
    };
    admin.entity_update("alice", &meta).await.unwrap();
    let alice = admin.entity_info("alice").await.unwrap();
    assert_eq!(alice.meta.shell.as_deref(), Some("/bin/zsh"));
    assert_eq!(alice.meta.gecos.as_deref(), Some("Alice Z"));
    assert_eq!(alice.meta.home.as_deref(), Some("/home/alice"));
    assert_eq!(alice.meta.groups, vec!["staff".to_string()]);
    assert!(!alice.meta.locked);

    let e = admin.entity_update("nobody", &meta).await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve.entity_update("alice", &meta).await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
}

#[tokio::test]
async fn entity_untyped_meta() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    let reader = builder(&server).build().unwrap();
    let all = reader
        .entity_um("alice", Action::Read, "*", None)
        .await
        .unwrap();
    assert_eq!(all, vec!["phone:555-0101".to_string()]);

    admin
        .entity_um("alice", Action::Upsert, "room", Some("B12"))
        .await
        .unwrap();
    let room = reader
        .entity_um("alice", Action::Read, "room", None)
        .await
        .unwrap();
    assert_eq!(room, vec!["room:B12".to_string()]);
    admin
        .entity_um("alice", Action::Upsert, "room", Some("C3"))
        .await
        .unwrap();
    let room = reader
        .entity_um("alice", Action::Read, "room", None)
        .await
        .unwrap();
    assert_eq!(room, vec!["room:C3".to_string()]);
    let parsed = netauth_core::types::parse_kv_strings(
        &reader
            .entity_um("alice", Action::Read, "*", None)
            .await
            .unwrap(),
    );
    assert_eq!(parsed["room"], vec!["C3".to_string()]);

    admin
        .entity_um("alice", Action::Clearexact, "room", Some("C3"))
        .await
        .unwrap();
    let room = reader
        .entity_um("alice", Action::Read, "room", None)
        .await
        .unwrap();
    assert!(room.is_empty(), "{room:?}");
    admin
        .entity_um("alice", Action::Clearfuzzy, "phone", None)
        .await
        .unwrap();
    let all = reader
        .entity_um("alice", Action::Read, "*", None)
        .await
        .unwrap();
    assert!(all.is_empty(), "{all:?}");

    // Writes need a token and the capability; unknown entity; bad action.
    let e = reader
        .entity_um("alice", Action::Upsert, "k", Some("v"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NoEntity), "{e:?}");
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve
        .entity_um("alice", Action::Upsert, "k", Some("v"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
    let e = reader
        .entity_um("nobody", Action::Read, "*", None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let e = admin
        .entity_um("alice", Action::Add, "k", Some("v"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::MalformedRequest { .. }), "{e:?}");
}

#[tokio::test]
async fn entity_kv_add_get_replace_del() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    admin
        .entity_kv_add("alice", "mail", ["alice@example.com", "a@example.org"])
        .await
        .unwrap();
    let got = admin.entity_kv_get("alice", "mail").await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key, "mail");
    assert_eq!(
        got[0].sorted_values(),
        vec!["alice@example.com", "a@example.org"]
    );
    let e = admin
        .entity_kv_add("alice", "mail", ["again"])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e:?}");

    admin
        .entity_kv_replace("alice", "mail", vec!["new@example.com".to_string()])
        .await
        .unwrap();
    let got = admin.entity_kv_get("alice", "mail").await.unwrap();
    assert_eq!(got, vec![KvData::new("mail", ["new@example.com"])]);
    admin.entity_kv_add("alice", "desk", ["7"]).await.unwrap();
    let all = admin.entity_kv_get("alice", "*").await.unwrap();
    let mut keys: Vec<_> = all.iter().map(|d| d.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, vec!["desk", "mail"]);

    admin.entity_kv_del("alice", "mail").await.unwrap();
    let e = admin.entity_kv_get("alice", "mail").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let e = admin.entity_kv_del("alice", "mail").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let e = admin
        .entity_kv_replace("alice", "mail", ["x"])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let e = admin.entity_kv_get("nobody", "*").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve.entity_kv_add("alice", "x", ["y"]).await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
}

#[tokio::test]
async fn entity_keys_read_add_drop() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    let reader = builder(&server).build().unwrap();
    let keys = reader
        .entity_keys("alice", Action::Read, "*", None)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with("SSH:"));
    let new_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAInew alice@laptop";
    admin
        .entity_keys("alice", Action::Add, "SSH", Some(new_key))
        .await
        .unwrap();
    let keys = reader
        .entity_keys("alice", Action::Read, "SSH", None)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&format!("SSH:{new_key}")));
    admin
        .entity_keys("alice", Action::Drop, "SSH", Some(new_key))
        .await
        .unwrap();
    let keys = reader
        .entity_keys("alice", Action::Read, "*", None)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);

    let e = reader
        .entity_keys("nobody", Action::Read, "*", None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve
        .entity_keys("alice", Action::Add, "SSH", Some("k"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
}

#[tokio::test]
async fn entity_lock_unlock_and_authentication() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    let reader = builder(&server).build().unwrap();
    let secret = Secret::new("alice-secret");
    reader.auth_entity("alice", &secret).await.unwrap();

    admin.entity_lock("alice").await.unwrap();
    assert!(reader.entity_info("alice").await.unwrap().meta.locked);
    let e = reader.auth_entity("alice", &secret).await.unwrap_err();
    assert!(e.is_unauthenticated(), "{e:?}");

    admin.entity_unlock("alice").await.unwrap();
    assert!(!reader.entity_info("alice").await.unwrap().meta.locked);
    reader.auth_entity("alice", &secret).await.unwrap();

    let e = admin.entity_lock("nobody").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve.entity_lock("alice").await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
    let e = eve.entity_unlock("carol").await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
}

#[tokio::test]
async fn entity_destroy() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    admin.entity_destroy("bob").await.unwrap();
    let e = admin.entity_info("bob").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let e = admin.entity_destroy("bob").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve.entity_destroy("alice").await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
}

#[tokio::test]
async fn entity_groups_are_effective_memberships() {
    let server = plain_server();
    let client = builder(&server).build().unwrap();
    let alice = client.entity_groups("alice").await.unwrap();
    assert_eq!(names(&alice), sorted(&["staff", "everyone", "employees"]));
    let bob = client.entity_groups("bob").await.unwrap();
    // Excluded from employees although everyone includes contractors.
    assert_eq!(names(&bob), sorted(&["contractors", "everyone"]));
    let eve = client.entity_groups("eve").await.unwrap();
    assert!(eve.is_empty());
    // Groups come back with their numbers.
    assert!(alice
        .iter()
        .any(|g| g.name == "staff" && g.number == Some(2000)));
    let e = client.entity_groups("nobody").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
}

// ----- authentication -----

#[tokio::test]
async fn auth_entity_right_wrong_unknown_locked() {
    let server = plain_server();
    let client = builder(&server).build().unwrap();
    client
        .auth_entity("alice", &Secret::new("alice-secret"))
        .await
        .unwrap();
    for (id, secret) in [
        ("alice", "wrong"),
        ("nobody", "whatever"),
        ("carol", "carol-secret"),
    ] {
        let e = client
            .auth_entity(id, &Secret::new(secret))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Unauthenticated { .. }), "{id}: {e:?}");
        assert!(!e.is_server_unavailable());
        assert!(!e.to_string().contains(secret), "{e}");
    }
}

#[tokio::test]
async fn tokens_get_and_validate() {
    let server = plain_server();
    let client = builder(&server).build().unwrap();
    let token = client
        .auth_get_token("alice", &Secret::new("alice-secret"))
        .await
        .unwrap();
    assert!(!token.is_empty());
    client.auth_validate_token(&token).await.unwrap();
    let e = client
        .auth_validate_token(&Token::new("not.a.token"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    let e = client
        .auth_get_token("alice", &Secret::new("wrong"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    let e = client
        .auth_get_token("carol", &Secret::new("carol-secret"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
}

#[tokio::test]
async fn change_own_secret_self_service() {
    let server = plain_server();
    let client = builder(&server).build().unwrap();
    let old = Secret::new("alice-secret");
    let new = Secret::new("alice-new-secret");
    client.change_own_secret("alice", &old, &new).await.unwrap();
    assert!(server.state().check_secret("alice", "alice-new-secret"));
    assert!(!server.state().check_secret("alice", "alice-secret"));
    client.auth_entity("alice", &new).await.unwrap();
    let e = client.auth_entity("alice", &old).await.unwrap_err();
    assert!(e.is_unauthenticated());

    // Wrong old secret: nothing changes.
    let e = client
        .change_own_secret("alice", &Secret::new("wrong"), &Secret::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    assert!(server.state().check_secret("alice", "alice-new-secret"));
}

#[tokio::test]
async fn change_secret_by_admin_and_refused() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    admin
        .auth_change_secret("bob", &Secret::new("bob-new"), None)
        .await
        .unwrap();
    assert!(server.state().check_secret("bob", "bob-new"));

    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve
        .auth_change_secret("bob", &Secret::new("mine-now"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
    assert!(server.state().check_secret("bob", "bob-new"));

    // The self-service form through the configured entity.
    eve.auth_change_secret(
        "eve",
        &Secret::new("eve-new"),
        Some(&Secret::new("eve-secret")),
    )
    .await
    .unwrap();
    assert!(server.state().check_secret("eve", "eve-new"));
}

// ----- groups -----

#[tokio::test]
async fn group_create_info_and_errors() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    admin
        .group_create("ops", "Operations", Some("helpdesk"), Some(3000))
        .await
        .unwrap();
    let info = admin.group_info("ops").await.unwrap();
    assert_eq!(info.group.name, "ops");
    assert_eq!(info.group.display_name.as_deref(), Some("Operations"));
    assert_eq!(info.group.number, Some(3000));
    assert_eq!(info.group.managed_by.as_deref(), Some("helpdesk"));

    // GroupInfo lists the managed groups after the group itself.
    let helpdesk = admin.group_info("helpdesk").await.unwrap();
    assert_eq!(helpdesk.group.name, "helpdesk");
    assert_eq!(names(&helpdesk.managed), sorted(&["ops", "projects"]));

    admin
        .group_create("auto", "Auto", None, None)
        .await
        .unwrap();
    let n = admin.group_info("auto").await.unwrap().group.number;
    assert!(matches!(n, Some(n) if n > 0), "{n:?}");

    let e = admin
        .group_create("ops", "again", None, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e:?}");
    let e = admin
        .group_create("ops2", "dup number", None, Some(3000))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e:?}");
    let e = admin.group_info("nothing").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve.group_create("x", "x", None, None).await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
}

#[tokio::test]
async fn group_update_by_admin_and_by_managing_group() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    let mut staff = admin.group_info("staff").await.unwrap().group;
    staff.display_name = Some("All staff".into());
    admin.group_update(&staff).await.unwrap();
    assert_eq!(
        admin
            .group_info("staff")
            .await
            .unwrap()
            .group
            .display_name
            .as_deref(),
        Some("All staff")
    );

    // dave is in helpdesk, which manages projects.
    let dave = as_entity(&server, "dave", "dave-secret").build().unwrap();
    let update = Group {
        name: "projects".into(),
        display_name: Some("Projects 2".into()),
        ..Default::default()
    };
    dave.group_update(&update).await.unwrap();
    assert_eq!(
        admin
            .group_info("projects")
            .await
            .unwrap()
            .group
            .display_name
            .as_deref(),
        Some("Projects 2")
    );
    let e = dave.group_update(&staff).await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
    let missing = Group {
        name: "nothing".into(),
        display_name: Some("x".into()),
        ..Default::default()
    };
    let e = admin.group_update(&missing).await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
}

#[tokio::test]
async fn group_untyped_meta_and_kv() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    let reader = builder(&server).build().unwrap();
    admin
        .group_um("staff", Action::Upsert, "floor", Some("3"))
        .await
        .unwrap();
    assert_eq!(
        reader
            .group_um("staff", Action::Read, "floor", None)
            .await
            .unwrap(),
        vec!["floor:3".to_string()]
    );
    admin
        .group_um("staff", Action::Clearfuzzy, "floor", None)
        .await
        .unwrap();
    assert!(reader
        .group_um("staff", Action::Read, "*", None)
        .await
        .unwrap()
        .is_empty());
    let e = reader
        .group_um("nothing", Action::Read, "*", None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");

    admin
        .group_kv_add("staff", "slack", ["#staff"])
        .await
        .unwrap();
    assert_eq!(
        reader.group_kv_get("staff", "slack").await.unwrap(),
        vec![KvData::new("slack", ["#staff"])]
    );
    let e = admin
        .group_kv_add("staff", "slack", ["#x"])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e:?}");
    admin
        .group_kv_replace("staff", "slack", ["#all-staff", "#general"])
        .await
        .unwrap();
    assert_eq!(
        reader.group_kv_get("staff", "*").await.unwrap()[0].sorted_values(),
        vec!["#all-staff", "#general"]
    );
    admin.group_kv_del("staff", "slack").await.unwrap();
    let e = reader.group_kv_get("staff", "slack").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let e = admin.group_kv_del("staff", "slack").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let e = admin
        .group_kv_replace("staff", "slack", ["x"])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve.group_kv_add("staff", "x", ["y"]).await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
}

#[tokio::test]
async fn group_rules_change_effective_members() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    admin.group_create("all", "All", None, None).await.unwrap();
    admin
        .group_update_rules("all", RuleAction::Include, "staff")
        .await
        .unwrap();
    admin
        .group_update_rules("all", RuleAction::Include, "contractors")
        .await
        .unwrap();
    let members = admin.group_members("all").await.unwrap();
    assert_eq!(ids(&members), sorted(&["alice", "bob", "carol"]));
    let info = admin.group_info("all").await.unwrap().group;
    assert!(info
        .expansions
        .iter()
        .any(|x| x.mode == ExpansionMode::Include && x.group == "staff"));

    admin
        .group_update_rules("all", RuleAction::Exclude, "contractors")
        .await
        .unwrap();
    let members = admin.group_members("all").await.unwrap();
    assert_eq!(ids(&members), sorted(&["alice", "carol"]));
    admin
        .group_update_rules("all", RuleAction::RemoveRule, "contractors")
        .await
        .unwrap();
    admin
        .group_update_rules("all", RuleAction::RemoveRule, "staff")
        .await
        .unwrap();
    assert!(admin.group_members("all").await.unwrap().is_empty());

    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve
        .group_update_rules("staff", RuleAction::Include, "contractors")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
}

#[tokio::test]
async fn group_members_add_del_and_managers() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    admin.group_add_member("helpdesk", "eve").await.unwrap();
    let members = admin.group_members("helpdesk").await.unwrap();
    assert_eq!(ids(&members), sorted(&["dave", "eve"]));
    assert!(admin
        .entity_info("eve")
        .await
        .unwrap()
        .meta
        .groups
        .contains(&"helpdesk".to_string()));
    admin.group_del_member("helpdesk", "eve").await.unwrap();
    assert_eq!(
        ids(&admin.group_members("helpdesk").await.unwrap()),
        vec!["dave"]
    );

    // dave manages projects through helpdesk; not staff.
    let dave = as_entity(&server, "dave", "dave-secret").build().unwrap();
    dave.group_add_member("projects", "bob").await.unwrap();
    assert_eq!(
        ids(&dave.group_members("projects").await.unwrap()),
        vec!["bob"]
    );
    dave.group_del_member("projects", "bob").await.unwrap();
    assert!(dave.group_members("projects").await.unwrap().is_empty());
    let e = dave.group_add_member("staff", "bob").await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");

    // Locked entities are still members; unknown groups have none.
    let staff = admin.group_members("staff").await.unwrap();
    assert_eq!(ids(&staff), sorted(&["alice", "carol"]));
    assert!(admin.group_members("nothing").await.unwrap().is_empty());
    // Adding to an unknown group or an unknown entity fails.
    let e = admin.group_add_member("nothing", "bob").await.unwrap_err();
    assert!(!e.is_server_unavailable(), "{e:?}");
    let e = admin.group_add_member("staff", "nobody").await.unwrap_err();
    assert!(!e.is_server_unavailable(), "{e:?}");
}

#[tokio::test]
async fn group_destroy_and_search() {
    let server = plain_server();
    let admin = admin(&server).build().unwrap();
    let all = admin.group_search("*").await.unwrap();
    assert_eq!(
        names(&all),
        sorted(&[
            "staff",
            "contractors",
            "helpdesk",
            "everyone",
            "employees",
            "projects"
        ])
    );
    assert_eq!(
        names(&admin.group_search("Name:staff").await.unwrap()),
        vec!["staff"]
    );
    let e = admin.group_search("").await.unwrap_err();
    assert!(matches!(e, Error::Internal { .. }), "{e:?}");

    admin.group_destroy("projects").await.unwrap();
    let e = admin.group_info("projects").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let e = admin.group_destroy("projects").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    let eve = as_entity(&server, "eve", "eve-secret").build().unwrap();
    let e = eve.group_destroy("staff").await.unwrap_err();
    assert!(matches!(e, Error::RequestorUnqualified { .. }), "{e:?}");
}
