//! Who started a run, and from where.

use serde::{Deserialize, Serialize};

/// Who started a run: a user, an API key or the system, with roles and permissions.
///
/// ```
/// use hookflow_runtime::Actor;
/// let actor = Actor::user("usr_42").with_role("customer").with_permission("orders:create");
/// assert!(actor.has_role("customer"));
/// assert!(actor.can("orders:create"));
/// assert!(!actor.can("orders:refund"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    id: String,
    kind: ActorKind,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    permissions: Vec<String>,
}

/// What kind of [`Actor`] it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActorKind {
    /// A signed-in user.
    User,
    /// A client authenticated by an API key.
    ApiKey,
    /// The application itself (a scheduled job, a migration, ...).
    System,
}

impl Actor {
    /// An actor of `kind` with `id`, no roles and no permissions.
    pub fn new(kind: ActorKind, id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            kind,
            roles: Vec::new(),
            permissions: Vec::new(),
        }
    }
    /// A user.
    pub fn user(id: impl Into<String>) -> Self {
        Actor::new(ActorKind::User, id)
    }
    /// An API key.
    pub fn api_key(id: impl Into<String>) -> Self {
        Actor::new(ActorKind::ApiKey, id)
    }
    /// The system.
    pub fn system() -> Self {
        Actor::new(ActorKind::System, "system")
    }
    /// Adds a role.
    #[must_use]
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }
    /// Adds a permission.
    #[must_use]
    pub fn with_permission(mut self, permission: impl Into<String>) -> Self {
        self.permissions.push(permission.into());
        self
    }
    /// The actor's id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The actor's kind.
    pub fn kind(&self) -> ActorKind {
        self.kind
    }
    /// The actor's roles.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// The actor's permissions.
    pub fn permissions(&self) -> &[String] {
        &self.permissions
    }
    /// Whether the actor has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    /// Whether the actor has `permission`.
    pub fn can(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// Where a run was started from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Origin {
    /// A local call in the application (the default).
    #[default]
    Local,
    /// An API request.
    Api,
}
