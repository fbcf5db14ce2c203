//! Users and personal access tokens.

use chrono::{DateTime, Utc};

/// A user account.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: Option<String>,
    /// Administrator.
    pub is_admin: bool,
    /// `active` or `blocked`.
    pub state: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// What creating a user needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: Option<String>,
    /// Administrator.
    pub is_admin: bool,
}

/// A personal access token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Full API access.
    Api,
    /// Read-only API access (GET/HEAD).
    ReadApi,
    /// Read the user's own profile and the users API.
    ReadUser,
    /// Create runners (`POST /user/runners`).
    CreateRunner,
    /// Manage runners (`/runners/:id…`).
    ManageRunner,
    /// Act as another user (accepted, not implemented).
    Sudo,
    /// Admin mode (accepted, not needed here).
    AdminMode,
}

impl Scope {
    /// Every scope, in display order.
    pub const ALL: [Scope; 7] = [
        Scope::Api,
        Scope::ReadApi,
        Scope::ReadUser,
        Scope::CreateRunner,
        Scope::ManageRunner,
        Scope::Sudo,
        Scope::AdminMode,
    ];

    /// GitLab's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Api => "api",
            Scope::ReadApi => "read_api",
            Scope::ReadUser => "read_user",
            Scope::CreateRunner => "create_runner",
            Scope::ManageRunner => "manage_runner",
            Scope::Sudo => "sudo",
            Scope::AdminMode => "admin_mode",
        }
    }

    /// Parses GitLab's name.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// A personal access token (its digest stays in the store).
#[derive(Debug, Clone, PartialEq)]
pub struct PersonalAccessToken {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Name given at creation.
    pub name: String,
    /// Loggable short form.
    pub token_short: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Expiry (the token is refused from that instant on).
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked tokens are refused.
    pub revoked: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl PersonalAccessToken {
    /// Whether the token grants `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether the token is past its expiry at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// What creating a personal access token needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPersonalAccessToken {
    /// Owner.
    pub user_id: i64,
    /// Name.
    pub name: String,
    /// Digest of the clear token.
    pub token_digest: String,
    /// Loggable short form.
    pub token_short: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A request's authenticated user and the token that authenticated it.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    /// The user.
    pub user: User,
    /// The token.
    pub token: PersonalAccessToken,
}
