//! First-start bootstrap: the administrator `root`, its personal access
//! token and the instance registration token.
//!
//! Tokens given in the settings (from `FORERUNNER_ROOT_TOKEN` and
//! `FORERUNNER_REGISTRATION_TOKEN`) are installed as given. Otherwise, on
//! first start, they are generated, printed once on stdout and written to
//! `root-token` and `registration-token` (mode 0600) in the data directory.
//! Only digests reach the database.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use forerunner_protocol::tokens::{PERSONAL_ACCESS_TOKEN_PREFIX, REGISTRATION_TOKEN_PREFIX};

use crate::config::{Settings, REGISTRATION_TOKEN_ENV, ROOT_TOKEN_ENV};
use crate::domain::{NewPersonalAccessToken, NewUser, Scope, Secret, User};
use crate::store::Store;

/// Login name of the administrator created on first start.
pub const ROOT_USERNAME: &str = "root";
/// File with a generated root token.
pub const ROOT_TOKEN_FILE: &str = "root-token";
/// File with a generated instance registration token.
pub const REGISTRATION_TOKEN_FILE: &str = "registration-token";
/// Scopes of root's bootstrap token.
pub const ROOT_TOKEN_SCOPES: [Scope; 3] = [Scope::Api, Scope::CreateRunner, Scope::ReadApi];

/// Ensures root, its token and the instance registration token exist.
pub async fn bootstrap(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    let (root, created) = match store.users.user_by_username(ROOT_USERNAME).await? {
        Some(user) => (user, false),
        None => {
            let user = store
                .users
                .create_user(NewUser {
                    username: ROOT_USERNAME.into(),
                    name: "Administrator".into(),
                    email: Some("admin@example.com".into()),
                    is_admin: true,
                })
                .await
                .context("failed to create the root user")?;
            tracing::info!(user_id = user.id, "created the administrator root");
            (user, true)
        }
    };
    match &settings.root_token {
        Some(token) => install_root_token(store, &root, token).await?,
        None if created => {
            let token = Secret::generate(PERSONAL_ACCESS_TOKEN_PREFIX);
            install_root_token(store, &root, &token).await?;
            announce(
                &settings.data_dir,
                ROOT_TOKEN_FILE,
                "root personal access token",
                &token,
            )?;
        }
        None => {}
    }
    let current = store.settings.settings().await?;
    match &settings.registration_token {
        Some(token)
            if current.registration_token_digest.as_deref() != Some(token.digest().as_str()) =>
        {
            store
                .settings
                .set_registration_token(&token.digest(), &token.short())
                .await?;
            tracing::info!(token = %token, "installed the instance registration token from {REGISTRATION_TOKEN_ENV}");
        }
        Some(_) => {}
        None if current.registration_token_digest.is_none() => {
            let token = Secret::generate(REGISTRATION_TOKEN_PREFIX);
            store
                .settings
                .set_registration_token(&token.digest(), &token.short())
                .await?;
            announce(
                &settings.data_dir,
                REGISTRATION_TOKEN_FILE,
                "instance registration token",
                &token,
            )?;
        }
        None => {}
    }
    Ok(())
}

async fn install_root_token(store: &Store, root: &User, token: &Secret) -> anyhow::Result<()> {
    if !token.expose().starts_with(PERSONAL_ACCESS_TOKEN_PREFIX) {
        bail!("{ROOT_TOKEN_ENV} must be a personal access token starting with {PERSONAL_ACCESS_TOKEN_PREFIX}");
    }
    match store.users.authenticate(&token.digest()).await? {
        Some(auth) if auth.user.id == root.id => Ok(()),
        Some(_) => {
            bail!("{ROOT_TOKEN_ENV} is already the token of another user; choose another value")
        }
        None => {
            store
                .users
                .create_token(NewPersonalAccessToken {
                    user_id: root.id,
                    name: "bootstrap".into(),
                    token_digest: token.digest(),
                    token_short: token.short(),
                    scopes: ROOT_TOKEN_SCOPES.to_vec(),
                    expires_at: None,
                })
                .await
                .context("failed to store root's personal access token")?;
            tracing::info!(token = %token, "installed root's personal access token");
            Ok(())
        }
    }
}

/// Prints a generated token once and writes it to `data_dir/file` (0600).
fn announce(data_dir: &Path, file: &str, what: &str, token: &Secret) -> anyhow::Result<()> {
    let path = write_secret_file(data_dir, file, token.expose())?;
    println!(
        "forerunner: generated {what}: {} (saved to {})",
        token.expose(),
        path.display()
    );
    Ok(())
}

/// Writes `contents` to `dir/file`, readable by the owner only.
pub fn write_secret_file(dir: &Path, file: &str, contents: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(file);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        // An existing file keeps its mode on open; tighten it first.
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("failed to restrict permissions of {}", path.display()))?;
        }
    }
    let mut f = options
        .open(&path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    writeln!(f, "{contents}").with_context(|| format!("failed to write {}", path.display()))?;
    Ok(path)
}
