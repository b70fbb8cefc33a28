//! The `netauth.v2.NetAuth2` service: every method, with NetAuth's checks
//! in NetAuth's order (read-only, token, capability, then the data).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netauth_proto::netauth::v2::net_auth2_server::NetAuth2;
use netauth_proto::netauth::v2::{
    Action, AuthRequest, AuthResult, CapabilityRequest, Empty, EntityRequest, GroupRequest,
    GroupRulesRequest, Kv2Request, KvRequest, ListOfEntities, ListOfGroups, ListOfKvData,
    ListOfStrings, RuleAction, SearchRequest, ServerStatus, SubSystemStatus,
};
use netauth_proto::{Capability, KvData};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::directory::{self, DirState, Directory, ExpansionRule};
use crate::faults::Faults;
use crate::search::Query;
use crate::token::{Claims, TokenService};

/// The request metadata of one call, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallMetadata {
    /// gRPC method name, e.g. `EntityInfo`.
    pub method: String,
    pub client_name: Option<String>,
    pub service_name: Option<String>,
    /// The `authorization` header (a token), if sent.
    pub authorization: Option<String>,
}

#[derive(Default)]
pub(crate) struct MetadataLog {
    pub last: Option<CallMetadata>,
    pub by_method: HashMap<String, CallMetadata>,
}

pub(crate) struct Shared {
    pub dir: Directory,
    pub faults: Faults,
    pub tokens: TokenService,
    pub read_only: bool,
    pub token_lifetime: Duration,
    pub search_cap: usize,
    pub metadata: Mutex<MetadataLog>,
    pub log_calls: AtomicBool,
}

#[derive(Clone)]
pub(crate) struct NetAuthService {
    pub shared: Arc<Shared>,
}

struct Call {
    token: Option<String>,
}

type Answer<T> = Result<Response<T>, Status>;

fn ok<T>(v: T) -> Answer<T> {
    Ok(Response::new(v))
}

fn required<'a>(v: &'a Option<String>, what: &str) -> Result<&'a str, Status> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Status::invalid_argument(format!("{what} is required")))
}

fn action_of(raw: Option<i32>, allowed: &[Action]) -> Result<Action, Status> {
    // proto2: an absent enum reads as its first value (ADD).
    Action::try_from(raw.unwrap_or(Action::Add as i32))
        .ok()
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| Status::invalid_argument("action not valid for this call"))
}

fn kv_data(d: Option<KvData>) -> Result<KvData, Status> {
    d.ok_or_else(|| Status::invalid_argument("KV data is required"))
}

/// Errors of membership and capability changes are internal on NetAuth.
fn as_internal(s: Status) -> Status {
    Status::internal(s.message().to_string())
}

impl NetAuthService {
    fn dir(&self) -> std::sync::MutexGuard<'_, DirState> {
        self.shared.dir.lock_state()
    }

    /// Records metadata, counts the call, applies delay and injected errors.
    async fn begin(&self, method: &'static str, md: &MetadataMap) -> Result<Call, Status> {
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        let meta = CallMetadata {
            method: method.to_string(),
            client_name: get("client-name"),
            service_name: get("service-name"),
            authorization: get("authorization"),
        };
        if self.shared.log_calls.load(Ordering::Relaxed) {
            eprintln!(
                "CALL {method} client-name={} service-name={} authorization={}",
                meta.client_name.as_deref().unwrap_or("-"),
                meta.service_name.as_deref().unwrap_or("-"),
                if meta.authorization.is_some() {
                    "yes"
                } else {
                    "no"
                },
            );
        }
        let token = meta.authorization.clone();
        {
            let mut log = self
                .shared
                .metadata
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            log.by_method.insert(method.to_string(), meta.clone());
            log.last = Some(meta);
        }
        let (delay, code) = self.shared.faults.on_call(method);
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        if let Some(code) = code {
            return Err(Status::new(code, format!("fault injected into {method}")));
        }
        Ok(Call { token })
    }

    fn writable(&self) -> Result<(), Status> {
        if self.shared.read_only {
            return Err(Status::unimplemented("this server is read-only"));
        }
        Ok(())
    }

    fn claims(&self, call: &Call) -> Result<Claims, Status> {
        let token = call
            .token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Status::invalid_argument("this call needs a token"))?;
        self.shared
            .tokens
            .validate(token)
            .ok_or_else(|| Status::unauthenticated("token is not valid"))
    }

    fn require(&self, call: &Call, cap: Capability) -> Result<Claims, Status> {
        self.writable()?;
        let claims = self.claims(call)?;
        if !claims.has(cap) {
            return Err(Status::permission_denied(format!(
                "requestor lacks {}",
                cap.as_str_name()
            )));
        }
        Ok(claims)
    }

    /// The capability, or membership in the group that manages `group`.
    fn require_or_manager(
        &self,
        call: &Call,
        cap: Capability,
        group: &str,
    ) -> Result<Claims, Status> {
        self.writable()?;
        let claims = self.claims(call)?;
        if claims.has(cap) || self.dir().manages(&claims.entity_id, group) {
            return Ok(claims);
        }
        Err(Status::permission_denied(format!(
            "requestor lacks {} and does not manage {group}",
            cap.as_str_name()
        )))
    }

    fn search(&self, expr: Option<&str>) -> Result<Query, Status> {
        Query::parse(expr.unwrap_or(""))
            .map_err(|e| Status::internal(format!("search failed: {e}")))
    }
}

const UM_ACTIONS: &[Action] = &[
    Action::Read,
    Action::Upsert,
    Action::Clearexact,
    Action::Clearfuzzy,
];
const KEY_ACTIONS: &[Action] = &[Action::Read, Action::Add, Action::Drop];

#[tonic::async_trait]
impl NetAuth2 for NetAuthService {
    async fn entity_create(&self, request: Request<EntityRequest>) -> Answer<Empty> {
        let call = self.begin("EntityCreate", request.metadata()).await?;
        self.require(&call, Capability::CreateEntity)?;
        let e = request.into_inner().entity.unwrap_or_default();
        let id = required(&e.id, "Entity.ID")?;
        self.dir()
            .create_entity(id, e.number, e.secret.as_deref())?;
        ok(Empty {})
    }

    async fn entity_update(&self, request: Request<EntityRequest>) -> Answer<Empty> {
        let call = self.begin("EntityUpdate", request.metadata()).await?;
        self.require(&call, Capability::ModifyEntityMeta)?;
        let r = request.into_inner();
        // The fact sheet names Entity.ID; NetAuth itself and its Python
        // client use Data.ID. Either names the target.
        let target = r
            .entity
            .as_ref()
            .and_then(|e| e.id.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| r.data.as_ref().and_then(|d| d.id.clone()));
        let target = required(&target, "Entity.ID")?;
        let meta = r.data.and_then(|d| d.meta).unwrap_or_default();
        self.dir().update_entity_meta(target, &meta)?;
        ok(Empty {})
    }

    async fn entity_info(&self, request: Request<EntityRequest>) -> Answer<ListOfEntities> {
        self.begin("EntityInfo", request.metadata()).await?;
        let id = request
            .into_inner()
            .entity
            .and_then(|e| e.id)
            .unwrap_or_default();
        let st = self.dir();
        let rec = st.entity(&id)?;
        ok(ListOfEntities {
            entities: vec![DirState::entity_answer(rec)],
        })
    }

    async fn entity_search(&self, request: Request<SearchRequest>) -> Answer<ListOfEntities> {
        self.begin("EntitySearch", request.metadata()).await?;
        let q = self.search(request.get_ref().expression.as_deref())?;
        let entities = self.dir().search_entities(&q, self.shared.search_cap);
        ok(ListOfEntities { entities })
    }

    async fn entity_um(&self, request: Request<KvRequest>) -> Answer<ListOfStrings> {
        let call = self.begin("EntityUM", request.metadata()).await?;
        let r = request.into_inner();
        let action = action_of(r.action, UM_ACTIONS)?;
        if action != Action::Read {
            self.require(&call, Capability::ModifyEntityMeta)?;
        }
        let target = r.target.unwrap_or_default();
        let mut st = self.dir();
        let meta = st.entity_meta_mut(&target)?;
        let strings = directory::patch_untyped(
            &mut meta.untyped_meta,
            action,
            r.key.as_deref().unwrap_or(""),
            r.value.as_deref().unwrap_or(""),
        )?;
        ok(ListOfStrings { strings })
    }

    async fn entity_kv_add(&self, request: Request<Kv2Request>) -> Answer<Empty> {
        let call = self.begin("EntityKVAdd", request.metadata()).await?;
        self.require(&call, Capability::ModifyEntityMeta)?;
        let r = request.into_inner();
        let data = kv_data(r.data)?;
        let mut st = self.dir();
        directory::kv_add(
            &mut st.entity_meta_mut(&r.target.unwrap_or_default())?.kv,
            data,
        )?;
        ok(Empty {})
    }

    async fn entity_kv_get(&self, request: Request<Kv2Request>) -> Answer<ListOfKvData> {
        self.begin("EntityKVGet", request.metadata()).await?;
        let r = request.into_inner();
        let key = r.data.map(|d| d.key).unwrap_or_else(|| "*".to_string());
        let mut st = self.dir();
        let meta = st.entity_meta_mut(&r.target.unwrap_or_default())?;
        ok(ListOfKvData {
            kv_data: directory::kv_get(&meta.kv, &key)?,
        })
    }

    async fn entity_kv_del(&self, request: Request<Kv2Request>) -> Answer<Empty> {
        let call = self.begin("EntityKVDel", request.metadata()).await?;
        self.require(&call, Capability::ModifyEntityMeta)?;
        let r = request.into_inner();
        let data = kv_data(r.data)?;
        let mut st = self.dir();
        directory::kv_del(
            &mut st.entity_meta_mut(&r.target.unwrap_or_default())?.kv,
            &data.key,
        )?;
        ok(Empty {})
    }

    async fn entity_kv_replace(&self, request: Request<Kv2Request>) -> Answer<Empty> {
        let call = self.begin("EntityKVReplace", request.metadata()).await?;
        self.require(&call, Capability::ModifyEntityMeta)?;
        let r = request.into_inner();
        let data = kv_data(r.data)?;
        let mut st = self.dir();
        directory::kv_replace(
            &mut st.entity_meta_mut(&r.target.unwrap_or_default())?.kv,
            data,
        )?;
        ok(Empty {})
    }

    async fn entity_keys(&self, request: Request<KvRequest>) -> Answer<ListOfStrings> {
        let call = self.begin("EntityKeys", request.metadata()).await?;
        let r = request.into_inner();
        let action = action_of(r.action, KEY_ACTIONS)?;
        let target = r.target.unwrap_or_default();
        if action != Action::Read {
            self.writable()?;
            let claims = self.claims(&call)?;
            // NetAuth lets an entity manage its own keys.
            if !claims.has(Capability::ModifyEntityKeys) && claims.entity_id != target {
                return Err(Status::permission_denied(
                    "requestor lacks MODIFY_ENTITY_KEYS",
                ));
            }
        }
        let strings = self.dir().entity_keys(
            &target,
            action,
            r.key.as_deref().unwrap_or(""),
            r.value.as_deref().unwrap_or(""),
        )?;
        ok(ListOfStrings { strings })
    }

    async fn entity_destroy(&self, request: Request<EntityRequest>) -> Answer<Empty> {
        let call = self.begin("EntityDestroy", request.metadata()).await?;
        self.require(&call, Capability::DestroyEntity)?;
        let id = request
            .into_inner()
            .entity
            .and_then(|e| e.id)
            .unwrap_or_default();
        self.dir().destroy_entity(&id)?;
        ok(Empty {})
    }

    async fn entity_lock(&self, request: Request<EntityRequest>) -> Answer<Empty> {
        let call = self.begin("EntityLock", request.metadata()).await?;
        self.require(&call, Capability::LockEntity)?;
        let id = request
            .into_inner()
            .entity
            .and_then(|e| e.id)
            .unwrap_or_default();
        self.dir().set_locked(&id, true)?;
        ok(Empty {})
    }

    async fn entity_unlock(&self, request: Request<EntityRequest>) -> Answer<Empty> {
        let call = self.begin("EntityUnlock", request.metadata()).await?;
        self.require(&call, Capability::UnlockEntity)?;
        let id = request
            .into_inner()
            .entity
            .and_then(|e| e.id)
            .unwrap_or_default();
        self.dir().set_locked(&id, false)?;
        ok(Empty {})
    }

    async fn entity_groups(&self, request: Request<EntityRequest>) -> Answer<ListOfGroups> {
        self.begin("EntityGroups", request.metadata()).await?;
        let id = request
            .into_inner()
            .entity
            .and_then(|e| e.id)
            .unwrap_or_default();
        let groups = self.dir().group_entities_of(&id)?;
        ok(ListOfGroups { groups })
    }

    async fn auth_entity(&self, request: Request<AuthRequest>) -> Answer<Empty> {
        self.begin("AuthEntity", request.metadata()).await?;
        let r = request.into_inner();
        let id = r.entity.and_then(|e| e.id).unwrap_or_default();
        if !self
            .dir()
            .authenticate(&id, r.secret.as_deref().unwrap_or(""))
        {
            return Err(Status::unauthenticated("authentication failed"));
        }
        ok(Empty {})
    }

    async fn auth_get_token(&self, request: Request<AuthRequest>) -> Answer<AuthResult> {
        self.begin("AuthGetToken", request.metadata()).await?;
        let r = request.into_inner();
        let id = r.entity.and_then(|e| e.id).unwrap_or_default();
        let caps = {
            let st = self.dir();
            if !st.authenticate(&id, r.secret.as_deref().unwrap_or("")) {
                return Err(Status::unauthenticated("authentication failed"));
            }
            st.capabilities_of(&id)
        };
        let token = self
            .shared
            .tokens
            .issue(&id, &caps, self.shared.token_lifetime);
        ok(AuthResult { token: Some(token) })
    }

    async fn auth_validate_token(&self, request: Request<AuthRequest>) -> Answer<Empty> {
        self.begin("AuthValidateToken", request.metadata()).await?;
        let token = request.into_inner().token.unwrap_or_default();
        if self.shared.tokens.validate(&token).is_none() {
            return Err(Status::unauthenticated("token is not valid"));
        }
        ok(Empty {})
    }

    async fn auth_change_secret(&self, request: Request<AuthRequest>) -> Answer<Empty> {
        let call = self.begin("AuthChangeSecret", request.metadata()).await?;
        self.writable()?;
        let claims = self.claims(&call)?;
        let r = request.into_inner();
        let entity = r.entity.unwrap_or_default();
        let target = entity.id.unwrap_or_default();
        if claims.entity_id == target {
            // Changing one's own secret needs the current one, not just a token.
            let current = entity.secret.unwrap_or_default();
            if !self.dir().authenticate(&target, &current) {
                return Err(Status::unauthenticated("current secret is wrong"));
            }
        } else if !claims.has(Capability::ChangeEntitySecret) {
            return Err(Status::permission_denied(
                "requestor lacks CHANGE_ENTITY_SECRET",
            ));
        }
        let new = required(&r.secret, "AuthRequest.Secret")?;
        self.dir().set_secret(&target, new).map_err(as_internal)?;
        ok(Empty {})
    }

    async fn group_create(&self, request: Request<GroupRequest>) -> Answer<Empty> {
        let call = self.begin("GroupCreate", request.metadata()).await?;
        self.require(&call, Capability::CreateGroup)?;
        let g = request.into_inner().group.unwrap_or_default();
        let name = required(&g.name, "Group.Name")?;
        self.dir().create_group(
            name,
            g.number,
            g.display_name.as_deref(),
            g.managed_by.as_deref(),
        )?;
        ok(Empty {})
    }

    async fn group_update(&self, request: Request<GroupRequest>) -> Answer<Empty> {
        let call = self.begin("GroupUpdate", request.metadata()).await?;
        let r = request.into_inner();
        let group = r.group.unwrap_or_default();
        let name = group.name.clone().unwrap_or_default();
        self.require_or_manager(&call, Capability::ModifyGroupMeta, &name)?;
        // NetAuth reads the new values from Group itself; Data also works.
        let new = r.data.unwrap_or(group);
        self.dir().update_group_meta(&name, &new)?;
        ok(Empty {})
    }

    async fn group_info(&self, request: Request<GroupRequest>) -> Answer<ListOfGroups> {
        self.begin("GroupInfo", request.metadata()).await?;
        let name = request
            .into_inner()
            .group
            .and_then(|g| g.name)
            .unwrap_or_default();
        let groups = self.dir().group_info(&name)?;
        ok(ListOfGroups { groups })
    }

    async fn group_um(&self, request: Request<KvRequest>) -> Answer<ListOfStrings> {
        let call = self.begin("GroupUM", request.metadata()).await?;
        let r = request.into_inner();
        let action = action_of(r.action, UM_ACTIONS)?;
        let target = r.target.unwrap_or_default();
        if action != Action::Read {
            self.require_or_manager(&call, Capability::ModifyGroupMeta, &target)?;
        }
        let mut st = self.dir();
        let g = st.group_mut(&target)?;
        let strings = directory::patch_untyped(
            &mut g.untyped_meta,
            action,
            r.key.as_deref().unwrap_or(""),
            r.value.as_deref().unwrap_or(""),
        )?;
        ok(ListOfStrings { strings })
    }

    async fn group_kv_add(&self, request: Request<Kv2Request>) -> Answer<Empty> {
        let call = self.begin("GroupKVAdd", request.metadata()).await?;
        self.require(&call, Capability::ModifyGroupMeta)?;
        let r = request.into_inner();
        let data = kv_data(r.data)?;
        let mut st = self.dir();
        directory::kv_add(&mut st.group_mut(&r.target.unwrap_or_default())?.kv, data)?;
        ok(Empty {})
    }

    async fn group_kv_get(&self, request: Request<Kv2Request>) -> Answer<ListOfKvData> {
        self.begin("GroupKVGet", request.metadata()).await?;
        let r = request.into_inner();
        let key = r.data.map(|d| d.key).unwrap_or_else(|| "*".to_string());
        let st = self.dir();
        let g = st.group(&r.target.unwrap_or_default())?;
        ok(ListOfKvData {
            kv_data: directory::kv_get(&g.kv, &key)?,
        })
    }

    async fn group_kv_del(&self, request: Request<Kv2Request>) -> Answer<Empty> {
        let call = self.begin("GroupKVDel", request.metadata()).await?;
        self.require(&call, Capability::ModifyGroupMeta)?;
        let r = request.into_inner();
        let data = kv_data(r.data)?;
        let mut st = self.dir();
        directory::kv_del(
            &mut st.group_mut(&r.target.unwrap_or_default())?.kv,
            &data.key,
        )?;
        ok(Empty {})
    }

    async fn group_kv_replace(&self, request: Request<Kv2Request>) -> Answer<Empty> {
        let call = self.begin("GroupKVReplace", request.metadata()).await?;
        self.require(&call, Capability::ModifyGroupMeta)?;
        let r = request.into_inner();
        let data = kv_data(r.data)?;
        let mut st = self.dir();
        directory::kv_replace(&mut st.group_mut(&r.target.unwrap_or_default())?.kv, data)?;
        ok(Empty {})
    }

    async fn group_update_rules(&self, request: Request<GroupRulesRequest>) -> Answer<Empty> {
        let call = self.begin("GroupUpdateRules", request.metadata()).await?;
        let r = request.into_inner();
        let group = r.group.and_then(|g| g.name).unwrap_or_default();
        self.require_or_manager(&call, Capability::ModifyGroupMeta, &group)?;
        let rule = match r.rule_action.and_then(|a| RuleAction::try_from(a).ok()) {
            Some(RuleAction::Include) => Some(ExpansionRule::Include),
            Some(RuleAction::Exclude) => Some(ExpansionRule::Exclude),
            Some(RuleAction::RemoveRule) => None,
            None => return Err(Status::invalid_argument("RuleAction is required")),
        };
        let target = r.target.and_then(|g| g.name).unwrap_or_default();
        self.dir().set_rule(&group, rule, &target)?;
        ok(Empty {})
    }

    async fn group_add_member(&self, request: Request<EntityRequest>) -> Answer<Empty> {
        let call = self.begin("GroupAddMember", request.metadata()).await?;
        self.writable()?;
        let claims = self.claims(&call)?;
        let e = request.into_inner().entity.unwrap_or_default();
        let id = e.id.unwrap_or_default();
        for group in e.meta.map(|m| m.groups).unwrap_or_default() {
            let mut st = self.dir();
            if !claims.has(Capability::ModifyGroupMembers) && !st.manages(&claims.entity_id, &group)
            {
                return Err(Status::permission_denied(format!(
                    "requestor lacks MODIFY_GROUP_MEMBERS and does not manage {group}"
                )));
            }
            st.add_direct_member(&id, &group).map_err(as_internal)?;
        }
        ok(Empty {})
    }

    async fn group_del_member(&self, request: Request<EntityRequest>) -> Answer<Empty> {
        let call = self.begin("GroupDelMember", request.metadata()).await?;
        self.writable()?;
        let claims = self.claims(&call)?;
        let e = request.into_inner().entity.unwrap_or_default();
        let id = e.id.unwrap_or_default();
        for group in e.meta.map(|m| m.groups).unwrap_or_default() {
            let mut st = self.dir();
            if !claims.has(Capability::ModifyGroupMembers) && !st.manages(&claims.entity_id, &group)
            {
                return Err(Status::permission_denied(format!(
                    "requestor lacks MODIFY_GROUP_MEMBERS and does not manage {group}"
                )));
            }
            st.del_direct_member(&id, &group).map_err(as_internal)?;
        }
        ok(Empty {})
    }

    async fn group_destroy(&self, request: Request<GroupRequest>) -> Answer<Empty> {
        let call = self.begin("GroupDestroy", request.metadata()).await?;
        self.require(&call, Capability::DestroyGroup)?;
        let name = request
            .into_inner()
            .group
            .and_then(|g| g.name)
            .unwrap_or_default();
        self.dir().destroy_group(&name)?;
        ok(Empty {})
    }

    async fn group_members(&self, request: Request<GroupRequest>) -> Answer<ListOfEntities> {
        self.begin("GroupMembers", request.metadata()).await?;
        let name = request
            .into_inner()
            .group
            .and_then(|g| g.name)
            .unwrap_or_default();
        // An unknown group has no members: an empty answer, no error.
        let entities = self.dir().member_entities(&name);
        ok(ListOfEntities { entities })
    }

    async fn group_search(&self, request: Request<SearchRequest>) -> Answer<ListOfGroups> {
        self.begin("GroupSearch", request.metadata()).await?;
        let q = self.search(request.get_ref().expression.as_deref())?;
        let groups = self.dir().search_groups(&q, self.shared.search_cap);
        ok(ListOfGroups { groups })
    }

    async fn system_capabilities(&self, request: Request<CapabilityRequest>) -> Answer<Empty> {
        let call = self.begin("SystemCapabilities", request.metadata()).await?;
        self.require(&call, Capability::GlobalRoot)?;
        let r = request.into_inner();
        // proto2: an absent capability reads as its first value, GLOBAL_ROOT.
        let cap = Capability::try_from(r.capability.unwrap_or(Capability::GlobalRoot as i32))
            .map_err(|_| Status::invalid_argument("unknown capability"))?;
        let add = match r.action.and_then(|a| Action::try_from(a).ok()) {
            Some(Action::Add) => true,
            Some(Action::Drop) => false,
            _ => return Err(Status::invalid_argument("action must be ADD or DROP")),
        };
        let target = required(&r.target, "CapabilityRequest.Target")?;
        let mut st = self.dir();
        if r.direct.unwrap_or(false) {
            st.set_entity_capability(target, cap, add)
        } else {
            st.set_group_capability(target, cap, add)
        }
        .map_err(as_internal)?;
        ok(Empty {})
    }

    async fn system_ping(&self, request: Request<Empty>) -> Answer<Empty> {
        self.begin("SystemPing", request.metadata()).await?;
        ok(Empty {})
    }

    async fn system_status(&self, request: Request<Empty>) -> Answer<ServerStatus> {
        self.begin("SystemStatus", request.metadata()).await?;
        let sub = |name: &str| SubSystemStatus {
            name: Some(name.to_string()),
            ok: Some(true),
            fault_message: None,
        };
        ok(ServerStatus {
            system_ok: Some(true),
            first_failure: None,
            sub_systems: vec![sub("directory"), sub("tokens")],
        })
    }
}
