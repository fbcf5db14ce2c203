//! `forerunner serve` and `forerunner admin`.
//!
//! `serve` runs the coordinator until SIGINT/SIGTERM. `admin` works directly
//! on a data directory's database (safe while a server runs: SQLite in WAL
//! mode) to create users, personal access tokens, groups and projects and to
//! show or reset registration tokens. New tokens are printed once; only their
//! digests are stored.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use chrono::{NaiveDate, TimeZone, Utc};
use forerunner_protocol::tokens::PERSONAL_ACCESS_TOKEN_PREFIX;

use crate::api::groups::valid_path;
use crate::api::settings::mint_registration_token;
use crate::bootstrap::{write_secret_file, REGISTRATION_TOKEN_FILE, ROOT_USERNAME};
use crate::config::{Settings, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use crate::domain::namespace::path_from_name;
use crate::domain::{
    digest, Group, NewGroup, NewPersonalAccessToken, NewProject, NewUser, Page, Project, Scope,
    Secret, User,
};
use crate::startup::{shutdown_signal, Application};
use crate::store::Store;
use crate::telemetry;

/// Run the coordinator: a GitLab-compatible server for runners.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (`host:port`; port 0 picks a free port).
    #[arg(long, default_value = DEFAULT_LISTEN, env = "FORERUNNER_LISTEN")]
    pub listen: String,
    /// Directory holding the database and generated token files.
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FORERUNNER_DATA_DIR")]
    pub data_dir: PathBuf,
}

/// Administer a coordinator's data directory (users, tokens, groups, projects).
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Data directory of the coordinator to administer.
    #[arg(long, global = true, default_value = DEFAULT_DATA_DIR, env = "FORERUNNER_DATA_DIR")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// Create and list users.
    #[command(subcommand)]
    User(UserCommand),
    /// Create personal access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Create and list groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Create and list projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Show or reset registration tokens (instance, group or project).
    #[command(subcommand, name = "registration-token")]
    RegistrationToken(RegistrationTokenCommand),
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Create a user.
    Create {
        /// Login name.
        username: String,
        /// Display name (defaults to the login name).
        #[arg(long)]
        name: Option<String>,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Create a personal access token and print it once.
    Create {
        /// Owner's login name.
        username: String,
        /// Token name.
        #[arg(long, default_value = "admin-cli")]
        name: String,
        /// Comma-separated scopes: api, read_api, read_user, create_runner, manage_runner, sudo, admin_mode.
        #[arg(long, default_value = "api")]
        scopes: String,
        /// Expiry date (YYYY-MM-DD, UTC midnight); never expires when absent.
        #[arg(long)]
        expires_at: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum GroupCommand {
    /// Create a group.
    Create {
        /// Display name.
        name: String,
        /// Path segment (derived from the name when absent).
        #[arg(long)]
        path: Option<String>,
        /// Parent group (id or full path).
        #[arg(long)]
        parent: Option<String>,
        /// Owner's login name.
        #[arg(long, default_value = ROOT_USERNAME)]
        owner: String,
    },
    /// List groups.
    List,
}

#[derive(Debug, clap::Subcommand)]
enum ProjectCommand {
    /// Create a project.
    Create {
        /// Display name.
        name: String,
        /// Path segment (derived from the name when absent).
        #[arg(long)]
        path: Option<String>,
        /// Group (id or full path); the owner's personal namespace when absent.
        #[arg(long)]
        group: Option<String>,
        /// Owner's login name.
        #[arg(long, default_value = ROOT_USERNAME)]
        owner: String,
        /// Git repository source: a local path or a URL.
        #[arg(long)]
        import_url: Option<String>,
        /// Default branch.
        #[arg(long, default_value = "main")]
        default_branch: String,
    },
    /// List projects.
    List,
}

#[derive(Debug, clap::Subcommand)]
enum RegistrationTokenCommand {
    /// Show a registration token: the instance token in full while the
    /// data directory's `registration-token` file holds it, otherwise the
    /// short form (tokens are stored as digests only; `reset` gives a new one).
    Show(TokenTarget),
    /// Replace a registration token and print the new one once.
    Reset(TokenTarget),
}

#[derive(Debug, clap::Args)]
struct TokenTarget {
    /// A group's token (id or full path) instead of the instance's.
    #[arg(long, conflicts_with = "project")]
    group: Option<String>,
    /// A project's token (id or full path) instead of the instance's.
    #[arg(long)]
    project: Option<String>,
}

/// Runs `forerunner serve`.
pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    telemetry::init();
    let settings = Settings::from_env(args.listen, args.data_dir);
    let data_dir = settings.data_dir.clone();
    let app = Application::build(settings).await?;
    tracing::info!(data_dir = %data_dir.display(), "coordinator ready");
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `forerunner admin`.
pub async fn admin(args: AdminArgs) -> anyhow::Result<ExitCode> {
    if !args
        .data_dir
        .join(crate::store::sqlite::DATABASE_FILE)
        .exists()
    {
        bail!(
            "no coordinator database in {} (run `forerunner serve --data-dir {}` once first, or pass --data-dir)",
            args.data_dir.display(),
            args.data_dir.display()
        );
    }
    let store = Store::open(&args.data_dir).await?;
    match args.command {
        AdminCommand::User(cmd) => user(&store, cmd).await?,
        AdminCommand::Token(cmd) => token(&store, cmd).await?,
        AdminCommand::Group(cmd) => group(&store, cmd).await?,
        AdminCommand::Project(cmd) => project(&store, cmd).await?,
        AdminCommand::RegistrationToken(cmd) => {
            registration_token(&store, &args.data_dir, cmd).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn find_user(store: &Store, username: &str) -> anyhow::Result<User> {
    store
        .users
        .user_by_username(username)
        .await?
        .with_context(|| format!("no user named {username:?} (create it with `forerunner admin user create {username}`)"))
}

async fn find_group(store: &Store, key: &str) -> anyhow::Result<Group> {
    let found = match key.parse::<i64>() {
        Ok(id) => store.namespaces.group_by_id(id).await?,
        Err(_) => store.namespaces.group_by_full_path(key).await?,
    };
    found
        .with_context(|| format!("no group {key:?} (list them with `forerunner admin group list`)"))
}

async fn find_project(store: &Store, key: &str) -> anyhow::Result<Project> {
    let found = match key.parse::<i64>() {
        Ok(id) => store.namespaces.project_by_id(id).await?,
        Err(_) => store.namespaces.project_by_full_path(key).await?,
    };
    found.with_context(|| {
        format!("no project {key:?} (list them with `forerunner admin project list`)")
    })
}

async fn user(store: &Store, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            username,
            name,
            email,
            admin,
        } => {
            if !valid_path(&username) {
                bail!("invalid username {username:?}: use letters, digits, '_', '-' and '.'");
            }
            let user = store
                .users
                .create_user(NewUser {
                    name: name.unwrap_or_else(|| username.clone()),
                    username,
                    email,
                    is_admin: admin,
                })
                .await
                .context("failed to create the user")?;
            println!("created user {} (id {})", user.username, user.id);
        }
        UserCommand::List => {
            for u in store.users.list_users(Page::ALL).await?.items {
                let admin = if u.is_admin { " admin" } else { "" };
                println!("{}\t{}\t{}{admin}", u.id, u.username, u.name);
            }
        }
    }
    Ok(())
}

fn parse_scopes(s: &str) -> anyhow::Result<Vec<Scope>> {
    let scopes = s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            Scope::parse(name).with_context(|| {
                let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown scope {name:?} (known: {})", known.join(", "))
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if scopes.is_empty() {
        bail!("a token needs at least one scope (for example --scopes api)");
    }
    Ok(scopes)
}

async fn token(store: &Store, cmd: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Create {
        username,
        name,
        scopes,
        expires_at,
    } = cmd;
    let user = find_user(store, &username).await?;
    let scopes = parse_scopes(&scopes)?;
    let expires_at = match expires_at {
        Some(s) => {
            let date = NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .with_context(|| format!("invalid --expires-at {s:?} (expected YYYY-MM-DD)"))?;
            let midnight = date.and_hms_opt(0, 0, 0).context("invalid date")?;
            Some(Utc.from_utc_datetime(&midnight))
        }
        None => None,
    };
    let secret = Secret::generate(PERSONAL_ACCESS_TOKEN_PREFIX);
    store
        .users
        .create_token(NewPersonalAccessToken {
            user_id: user.id,
            name,
            token_digest: secret.digest(),
            token_short: secret.short(),
            scopes,
            expires_at,
        })
        .await
        .context("failed to store the token")?;
    println!("{}", secret.expose());
    Ok(())
}

async fn group(store: &Store, cmd: GroupCommand) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::Create {
            name,
            path,
            parent,
            owner,
        } => {
            let owner = find_user(store, &owner).await?;
            let parent_id = match parent {
                Some(p) => Some(find_group(store, &p).await?.id),
                None => None,
            };
            let path = path.unwrap_or_else(|| path_from_name(&name));
            if !valid_path(&path) {
                bail!("invalid group path {path:?}: use letters, digits, '_', '-' and '.'");
            }
            let group = store
                .namespaces
                .create_group(NewGroup {
                    name,
                    path,
                    parent_id,
                    description: None,
                    visibility: "private".into(),
                    creator_id: Some(owner.id),
                    runners_token: None,
                })
                .await
                .context("failed to create the group")?;
            println!("created group {} (id {})", group.full_path, group.id);
        }
        GroupCommand::List => {
            for g in store.namespaces.list_groups(None, Page::ALL).await?.items {
                println!("{}\t{}\t{}", g.id, g.full_path, g.name);
            }
        }
    }
    Ok(())
}

async fn project(store: &Store, cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::Create {
            name,
            path,
            group,
            owner,
            import_url,
            default_branch,
        } => {
            let owner = find_user(store, &owner).await?;
            let group = match group {
                Some(g) => Some(find_group(store, &g).await?),
                None => None,
            };
            let path = path.unwrap_or_else(|| path_from_name(&name));
            if !valid_path(&path) {
                bail!("invalid project path {path:?}: use letters, digits, '_', '-' and '.'");
            }
            let prefix = group
                .as_ref()
                .map_or(owner.username.clone(), |g| g.full_path.clone());
            let project = store
                .namespaces
                .create_project(NewProject {
                    full_path: format!("{prefix}/{path}"),
                    name,
                    path,
                    group_id: group.map(|g| g.id),
                    creator_id: Some(owner.id),
                    description: None,
                    visibility: "private".into(),
                    import_url,
                    default_branch,
                    runners_token: None,
                })
                .await
                .context("failed to create the project")?;
            println!("created project {} (id {})", project.full_path, project.id);
        }
        ProjectCommand::List => {
            for p in store.namespaces.list_projects(None, Page::ALL).await?.items {
                println!(
                    "{}\t{}\t{}",
                    p.id,
                    p.full_path,
                    p.import_url.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}

async fn registration_token(
    store: &Store,
    data_dir: &Path,
    cmd: RegistrationTokenCommand,
) -> anyhow::Result<()> {
    match cmd {
        RegistrationTokenCommand::Show(target) => {
            let short = if let Some(g) = target.group {
                find_group(store, &g).await?.runners_token_short
            } else if let Some(p) = target.project {
                find_project(store, &p).await?.runners_token_short
            } else {
                let settings = store.settings.settings().await?;
                // The token file written at bootstrap or reset holds the
                // clear instance token; show it if it is still the current one.
                let saved = std::fs::read_to_string(data_dir.join(REGISTRATION_TOKEN_FILE))
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|t| Some(digest(t)) == settings.registration_token_digest);
                if let Some(token) = saved {
                    println!("{token}");
                    return Ok(());
                }
                settings.registration_token_short
            };
            match short {
                Some(short) => println!(
                    "{short}… (only a digest is stored; `forerunner admin registration-token reset` prints a new token)"
                ),
                None => println!("no registration token set (create one with `forerunner admin registration-token reset`)"),
            }
        }
        RegistrationTokenCommand::Reset(target) => {
            let token = mint_registration_token();
            let pair = Some((token.digest(), token.short()));
            if let Some(g) = target.group {
                let group = find_group(store, &g).await?;
                store
                    .namespaces
                    .set_group_runners_token(group.id, pair)
                    .await?;
            } else if let Some(p) = target.project {
                let project = find_project(store, &p).await?;
                store
                    .namespaces
                    .set_project_runners_token(project.id, pair)
                    .await?;
            } else {
                store
                    .settings
                    .set_registration_token(&token.digest(), &token.short())
                    .await?;
                write_secret_file(data_dir, REGISTRATION_TOKEN_FILE, token.expose())?;
            }
            println!("{}", token.expose());
        }
    }
    Ok(())
}
