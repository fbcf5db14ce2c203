//! What to run: pull policies, build-container and service-container specifications.
//!
//! These are plain data built by the (future) docker executor from the job payload and
//! `[runners.docker]`; this module only converts them into Engine API bodies. It is pure, so the
//! mapping of every setting is unit-tested without a daemon.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointSettings, HostConfig, NetworkingConfig,
    ResourcesUlimits,
};

use crate::executors::docker::EngineError;

/// One entry of `[runners.docker] pull_policy`; a list is tried in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Always pull; the official runner's default.
    Always,
    /// Use the local image if there is one, pull otherwise.
    IfNotPresent,
    /// Only ever use a local image.
    Never,
}

impl PullPolicy {
    /// The spelling used in `config.toml` and `.gitlab-ci.yml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::IfNotPresent => "if-not-present",
            Self::Never => "never",
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PullPolicy {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "always" => Ok(Self::Always),
            "if-not-present" => Ok(Self::IfNotPresent),
            "never" => Ok(Self::Never),
            _ => Err(EngineError::InvalidValue {
                what: "pull_policy",
                value: s.to_owned(),
                reason: "expected \"always\", \"if-not-present\" or \"never\"".to_owned(),
            }),
        }
    }
}

/// Joins a container to a network under the given DNS aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// The network's name (or id).
    pub network: String,
    /// Names other containers on that network resolve to this container.
    pub aliases: Vec<String>,
}

/// A build container: the job image with everything `[runners.docker]` and the job ask for.
///
/// The script itself is not part of the spec: [`crate::executors::docker::Engine::run_script`]
/// feeds it on the standard input of `command` (by default `sh`), like the official runner.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    /// Image reference, e.g. `alpine:3.20`.
    pub image: String,
    /// Overrides the image's entrypoint; `Some(vec![])` or `Some(vec!["".into()])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// The command that reads the script on its standard input; empty means `["sh"]`.
    pub command: Vec<String>,
    /// Environment variables, in order (later duplicates win, as in Docker).
    pub env: Vec<(String, String)>,
    /// Working directory inside the container.
    pub working_dir: Option<String>,
    /// Bind mounts and volumes in Docker's `source:target[:options]` form, e.g.
    /// `/srv/builds/abc/0:/builds` or `my-cache-volume:/cache:rw`.
    pub binds: Vec<String>,
    /// `[runners.docker] privileged`.
    pub privileged: bool,
    /// Capabilities to add, e.g. `NET_ADMIN`.
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    pub cap_drop: Vec<String>,
    /// Memory limit in bytes (see [`parse_memory`]).
    pub memory: Option<i64>,
    /// CPU limit in billionths of a CPU (see [`parse_cpus`]).
    pub nano_cpus: Option<i64>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// Extra `/etc/hosts` entries, `host:ip`.
    pub extra_hosts: Vec<String>,
    /// Docker network mode (`bridge`, `host`, `none`, a network name). When set, the container
    /// joins that network instead of [`ContainerSpec::network`].
    pub network_mode: Option<String>,
    /// The user the command runs as (`name`, `uid` or `uid:gid`).
    pub user: Option<String>,
    /// The per-job network, if any (services are reachable through it).
    pub network: Option<NetworkAttachment>,
    /// The rest of `[runners.docker]` that goes to the engine as written.
    pub options: HostOptions,
}

/// Settings of build containers that `[runners.docker]` hands to the engine as they are:
/// resources, devices, kernel parameters, mounts and security options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostOptions {
    /// `/dev/shm` size in bytes (`shm_size`).
    pub shm_size: Option<i64>,
    /// Memory plus swap in bytes, `-1` unlimited (`memory_swap`).
    pub memory_swap: Option<i64>,
    /// Soft memory limit in bytes (`memory_reservation`).
    pub memory_reservation: Option<i64>,
    /// `oom_kill_disable`.
    pub oom_kill_disable: bool,
    /// `cpuset_cpus`, e.g. `0-3`.
    pub cpuset_cpus: Option<String>,
    /// `cpu_shares`.
    pub cpu_shares: Option<i64>,
    /// `devices`, parsed (see [`parse_device`]).
    pub devices: Vec<DeviceMapping>,
    /// `security_opt`.
    pub security_opt: Vec<String>,
    /// `[runners.docker.sysctls]`.
    pub sysctls: HashMap<String, String>,
    /// `[runners.docker.tmpfs]`: path → mount options.
    pub tmpfs: HashMap<String, String>,
    /// `dns_search`.
    pub dns_search: Vec<String>,
    /// `group_add`.
    pub group_add: Vec<String>,
    /// `userns_mode`.
    pub userns_mode: Option<String>,
    /// `runtime`.
    pub runtime: Option<String>,
    /// `[runners.docker.ulimit]`, parsed (see [`parse_ulimit`]).
    pub ulimits: Vec<ResourcesUlimits>,
}

impl HostOptions {
    /// Sets these options on `host`.
    fn apply(&self, host: &mut HostConfig) {
        let map = |m: &HashMap<String, String>| (!m.is_empty()).then(|| m.clone());
        host.shm_size = self.shm_size;
        host.memory_swap = self.memory_swap;
        host.memory_reservation = self.memory_reservation;
        host.oom_kill_disable = self.oom_kill_disable.then_some(true);
        host.cpuset_cpus = self.cpuset_cpus.clone();
        host.cpu_shares = self.cpu_shares;
        host.devices = (!self.devices.is_empty()).then(|| self.devices.clone());
        host.security_opt = non_empty(&self.security_opt);
        host.sysctls = map(&self.sysctls);
        host.tmpfs = map(&self.tmpfs);
        host.dns_search = non_empty(&self.dns_search);
        host.group_add = non_empty(&self.group_add);
        host.userns_mode = self.userns_mode.clone();
        host.runtime = self.runtime.clone();
        host.ulimits = (!self.ulimits.is_empty()).then(|| self.ulimits.clone());
    }
}

impl ContainerSpec {
    /// A spec running `sh` in `image` with nothing else set.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            ..Self::default()
        }
    }

    /// The Engine API body creating this container with `labels`. With `stdin`, the container
    /// keeps its standard input open for one attach, which closes it when done.
    pub(crate) fn to_create_body(
        &self,
        labels: HashMap<String, String>,
        stdin: bool,
    ) -> ContainerCreateBody {
        let command = if self.command.is_empty() {
            vec!["sh".to_owned()]
        } else {
            self.command.clone()
        };
        let network_mode = self
            .network_mode
            .clone()
            .or_else(|| self.network.as_ref().map(|n| n.network.clone()));
        let mut host = HostConfig {
            binds: non_empty(&self.binds),
            privileged: Some(self.privileged),
            cap_add: non_empty(&self.cap_add),
            cap_drop: non_empty(&self.cap_drop),
            memory: self.memory,
            nano_cpus: self.nano_cpus,
            dns: non_empty(&self.dns),
            extra_hosts: non_empty(&self.extra_hosts),
            network_mode,
            ..HostConfig::default()
        };
        self.options.apply(&mut host);
        ContainerCreateBody {
            image: Some(self.image.clone()),
            entrypoint: self.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    vec![String::new()]
                } else {
                    e.clone()
                }
            }),
            cmd: Some(command),
            env: Some(env_list(&self.env)),
            working_dir: self.working_dir.clone(),
            user: self.user.clone(),
            labels: Some(labels),
            attach_stdin: Some(stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(stdin),
            stdin_once: Some(stdin),
            tty: Some(false),
            host_config: Some(host),
            networking_config: self
                .network
                .as_ref()
                .filter(|_| self.network_mode.is_none())
                .map(networking_config),
            ..ContainerCreateBody::default()
        }
    }
}

/// A service container (`services:` of the job): started before the build containers and
/// reachable from them by its aliases on the per-job network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceSpec {
    /// Image reference.
    pub image: String,
    /// DNS aliases on the job network. The official runner derives `postgres` and
    /// `library-postgres` from `library/postgres:15` and adds the job's `alias:` list.
    pub aliases: Vec<String>,
    /// Overrides the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Overrides the image's command.
    pub command: Option<Vec<String>>,
    /// Environment variables (the job's variables plus the service's own).
    pub env: Vec<(String, String)>,
    /// Bind mounts and volumes, `source:target[:options]`; the official runner mounts the builds
    /// directory into services too.
    pub binds: Vec<String>,
    /// Runs the service privileged (`[runners.docker] services_privileged`, or `privileged`),
    /// e.g. for `docker:dind`.
    pub privileged: bool,
    /// Memory limit in bytes (`service_memory`).
    pub memory: Option<i64>,
    /// CPU limit in billionths of a CPU (`service_cpus`).
    pub nano_cpus: Option<i64>,
    /// DNS servers (`dns`, as build containers).
    pub dns: Vec<String>,
    /// Extra `/etc/hosts` entries (`extra_hosts`, as build containers).
    pub extra_hosts: Vec<String>,
    /// The rest: `service_memory_swap`, `service_memory_reservation`, `service_cpuset_cpus`,
    /// `service_cpu_shares`, `services_security_opt`, `services_tmpfs`, and `shm_size`,
    /// `dns_search`, `userns_mode`, `runtime` as build containers.
    pub options: HostOptions,
}

impl ServiceSpec {
    /// The Engine API body creating this service on `network` with `labels`.
    pub(crate) fn to_create_body(
        &self,
        labels: HashMap<String, String>,
        network: &str,
    ) -> ContainerCreateBody {
        let mut host = HostConfig {
            network_mode: Some(network.to_owned()),
            binds: non_empty(&self.binds),
            privileged: Some(self.privileged),
            memory: self.memory,
            nano_cpus: self.nano_cpus,
            dns: non_empty(&self.dns),
            extra_hosts: non_empty(&self.extra_hosts),
            ..HostConfig::default()
        };
        self.options.apply(&mut host);
        ContainerCreateBody {
            image: Some(self.image.clone()),
            entrypoint: self.entrypoint.clone(),
            cmd: self.command.clone(),
            env: Some(env_list(&self.env)),
            labels: Some(labels),
            host_config: Some(host),
            networking_config: Some(networking_config(&NetworkAttachment {
                network: network.to_owned(),
                aliases: self.aliases.clone(),
            })),
            ..ContainerCreateBody::default()
        }
    }
}

/// The network aliases of a service, as the official runner gives them: two names derived from
/// the image (registry port, tag and digest dropped; `/` replaced by `__` and by `-`), then the
/// job's `alias` value, which may hold several aliases separated by spaces or commas.
///
/// `registry.example.com:5000/group/db:15` with alias `db` gives
/// `registry.example.com__group__db`, `registry.example.com-group-db` and `db`.
pub fn service_aliases(image: &str, alias: Option<&str>) -> Vec<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let (path, last) = match without_digest.rsplit_once('/') {
        Some((path, last)) => (Some(path), last),
        None => (None, without_digest),
    };
    let last = last.split(':').next().unwrap_or(last);
    let mut parts: Vec<&str> = path.map(|p| p.split('/').collect()).unwrap_or_default();
    if let Some(first) = parts.first_mut() {
        // A registry host may carry a port: `host:5000` becomes `host`.
        *first = first.split(':').next().unwrap_or(first);
    }
    parts.push(last);
    let mut aliases = Vec::new();
    let mut add = |a: String| {
        if !a.is_empty() && !aliases.contains(&a) {
            aliases.push(a);
        }
    };
    add(parts.join("__"));
    add(parts.join("-"));
    for a in alias
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
    {
        add(a.to_owned());
    }
    aliases
}

fn env_list(env: &[(String, String)]) -> Vec<String> {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn networking_config(attachment: &NetworkAttachment) -> NetworkingConfig {
    NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            attachment.network.clone(),
            EndpointSettings {
                aliases: non_empty(&attachment.aliases),
                ..EndpointSettings::default()
            },
        )])),
    }
}

/// Parses a Docker memory size such as `512m`, `1g`, `1.5GB` or `1048576` into bytes
/// (binary multiples, as `docker run --memory`).
pub fn parse_memory(value: &str) -> Result<i64, EngineError> {
    let invalid = |reason: &str| EngineError::InvalidValue {
        what: "memory",
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let s = value.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| invalid("expected a number with an optional unit, e.g. 512m or 2g"))?;
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        _ => return Err(invalid("unknown unit (use b, k, m, g, t or p)")),
    };
    let bytes = number * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < i64::MAX as f64) {
        return Err(invalid("must be at least one byte"));
    }
    Ok(bytes as i64)
}

/// Parses `memory_swap`: a size as [`parse_memory`], or `-1` for unlimited swap.
pub fn parse_memory_swap(value: &str) -> Result<i64, EngineError> {
    if value.trim() == "-1" {
        return Ok(-1);
    }
    parse_memory(value)
}

/// Parses a `devices` entry, `host[:container[:permissions]]` as `docker run --device`: the
/// container path defaults to the host path, the permissions (of `r`, `w`, `m`) to `rwm`.
pub fn parse_device(value: &str) -> Result<DeviceMapping, EngineError> {
    let invalid = |reason: &str| EngineError::InvalidValue {
        what: "devices",
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let permissions = |p: &str| !p.is_empty() && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let parts: Vec<&str> = value.trim().split(':').collect();
    let (host, container, perms) = match parts[..] {
        [host] => (host, host, "rwm"),
        [host, p] if permissions(p) => (host, host, p),
        [host, container] => (host, container, "rwm"),
        [host, container, p] if permissions(p) => (host, container, p),
        [_, _, _] => return Err(invalid("permissions are made of r, w and m, e.g. rwm")),
        _ => return Err(invalid("expected host[:container[:permissions]]")),
    };
    if !host.starts_with('/') || !container.starts_with('/') {
        return Err(invalid("device paths are absolute, e.g. /dev/net/tun"));
    }
    Ok(DeviceMapping {
        path_on_host: Some(host.to_owned()),
        path_in_container: Some(container.to_owned()),
        cgroup_permissions: Some(perms.to_owned()),
    })
}

/// Parses one `[runners.docker.ulimit]` entry as `docker run --ulimit name=soft[:hard]`: the
/// hard limit defaults to the soft one; `-1` means unlimited.
pub fn parse_ulimit(name: &str, value: &str) -> Result<ResourcesUlimits, EngineError> {
    let invalid = |reason: &str| EngineError::InvalidValue {
        what: "ulimit",
        value: format!("{name} = {value:?}"),
        reason: reason.to_owned(),
    };
    if name.trim().is_empty() {
        return Err(invalid("a limit needs a name, e.g. nofile"));
    }
    let number = |v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| invalid("expected soft[:hard] numbers, e.g. \"1024:2048\""))
    };
    let (soft, hard) = match value.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => {
            let n = number(value)?;
            (n, n)
        }
    };
    if hard != -1 && (soft == -1 || soft > hard) {
        return Err(invalid("the soft limit cannot exceed the hard one"));
    }
    Ok(ResourcesUlimits {
        name: Some(name.trim().to_owned()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// Parses a CPU count such as `1.5` into billionths of a CPU (`docker run --cpus`).
pub fn parse_cpus(value: &str) -> Result<i64, EngineError> {
    let cpus: f64 = value
        .trim()
        .parse()
        .map_err(|_| EngineError::InvalidValue {
            what: "cpus",
            value: value.to_owned(),
            reason: "expected a decimal number of CPUs, e.g. 1.5".to_owned(),
        })?;
    let nanos = (cpus * 1e9).round();
    if !(nanos >= 1.0 && nanos < i64::MAX as f64) {
        return Err(EngineError::InvalidValue {
            what: "cpus",
            value: value.to_owned(),
            reason: "must be more than zero".to_owned(),
        });
    }
    Ok(nanos as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_parse_and_reject_typos() {
        assert_eq!("always".parse::<PullPolicy>().unwrap(), PullPolicy::Always);
        assert_eq!(
            "if-not-present".parse::<PullPolicy>().unwrap(),
            PullPolicy::IfNotPresent
        );
        assert_eq!("never".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
        let err = "if_not_present".parse::<PullPolicy>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid pull_policy \"if_not_present\": expected \"always\", \"if-not-present\" or \
             \"never\""
        );
    }

    #[test]
    fn service_aliases_follow_the_official_rules() {
        assert_eq!(service_aliases("postgres:15", None), ["postgres"]);
        assert_eq!(
            service_aliases("tutum/wordpress", Some("wp")),
            ["tutum__wordpress", "tutum-wordpress", "wp"]
        );
        assert_eq!(
            service_aliases(
                "registry.example.com:5000/group/db:15@sha256:abc",
                Some("a, b c")
            ),
            [
                "registry.example.com__group__db",
                "registry.example.com-group-db",
                "a",
                "b",
                "c"
            ]
        );
    }

    #[test]
    fn memory_sizes_follow_docker_units() {
        assert_eq!(parse_memory("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("2G").unwrap(), 2 << 30);
        assert_eq!(parse_memory("1.5gb").unwrap(), 3 << 29);
        assert!(parse_memory("12x").is_err());
        assert!(parse_memory("m").is_err());
        assert!(parse_memory("0").is_err());
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_cpus("0.25").unwrap(), 250_000_000);
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("two").is_err());
    }

    #[test]
    fn build_container_body_maps_every_setting() {
        let spec = ContainerSpec {
            image: "img:1".into(),
            entrypoint: Some(vec![]),
            command: vec![],
            env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
            working_dir: Some("/builds/g/p".into()),
            binds: vec!["/h/builds:/builds".into()],
            privileged: true,
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["CHOWN".into()],
            memory: Some(1 << 20),
            nano_cpus: Some(500_000_000),
            dns: vec!["1.1.1.1".into()],
            extra_hosts: vec!["db:10.0.0.2".into()],
            network_mode: None,
            user: Some("1000:1000".into()),
            network: Some(NetworkAttachment {
                network: "net".into(),
                aliases: vec!["build".into()],
            }),
            options: HostOptions {
                shm_size: Some(1 << 26),
                memory_swap: Some(-1),
                oom_kill_disable: true,
                devices: vec![parse_device("/dev/fuse").unwrap()],
                tmpfs: HashMap::from([("/scratch".to_owned(), "size=1m".to_owned())]),
                security_opt: vec!["no-new-privileges".into()],
                ..HostOptions::default()
            },
        };
        let body = spec.to_create_body(HashMap::new(), true);
        assert_eq!(body.entrypoint, Some(vec![String::new()]));
        assert_eq!(body.cmd, Some(vec!["sh".to_owned()]));
        assert_eq!(body.env, Some(vec!["A=1".to_owned(), "B=x=y".to_owned()]));
        assert_eq!(body.working_dir.as_deref(), Some("/builds/g/p"));
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(body.open_stdin, Some(true));
        assert_eq!(body.stdin_once, Some(true));
        let host = body.host_config.unwrap();
        assert_eq!(host.binds, Some(vec!["/h/builds:/builds".to_owned()]));
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_owned()]));
        assert_eq!(host.cap_drop, Some(vec!["CHOWN".to_owned()]));
        assert_eq!(host.memory, Some(1 << 20));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.dns, Some(vec!["1.1.1.1".to_owned()]));
        assert_eq!(host.extra_hosts, Some(vec!["db:10.0.0.2".to_owned()]));
        assert_eq!(host.network_mode.as_deref(), Some("net"));
        assert_eq!(host.shm_size, Some(1 << 26));
        assert_eq!(host.memory_swap, Some(-1));
        assert_eq!(host.oom_kill_disable, Some(true));
        assert_eq!(host.devices.unwrap().len(), 1);
        assert_eq!(host.tmpfs.unwrap()["/scratch"], "size=1m");
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        assert_eq!(host.sysctls, None, "unset options are left to the engine");
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["net"].aliases, Some(vec!["build".to_owned()]));
    }

    #[test]
    fn devices_parse_as_docker_run_device() {
        let d = |v: &str| {
            let m = parse_device(v).unwrap();
            (
                m.path_on_host.unwrap(),
                m.path_in_container.unwrap(),
                m.cgroup_permissions.unwrap(),
            )
        };
        let t = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(d("/dev/kvm"), t("/dev/kvm", "/dev/kvm", "rwm"));
        assert_eq!(d("/dev/kvm:r"), t("/dev/kvm", "/dev/kvm", "r"));
        assert_eq!(d("/dev/sda:/dev/xvda"), t("/dev/sda", "/dev/xvda", "rwm"));
        assert_eq!(d("/dev/sda:/dev/xvda:rw"), t("/dev/sda", "/dev/xvda", "rw"));
        for bad in ["", "kvm", "/dev/a:/dev/b:x", "/a:/b:/c:/d"] {
            assert!(parse_device(bad).is_err(), "{bad:?}");
        }
        let u = parse_ulimit("nofile", "1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));
        let u = parse_ulimit("core", "-1").unwrap();
        assert_eq!((u.soft, u.hard), (Some(-1), Some(-1)));
        assert!(parse_ulimit("nofile", "2048:1024").is_err());
        assert!(parse_ulimit("nofile", "many").is_err());
        assert!(parse_ulimit(" ", "1").is_err());
        assert_eq!(parse_memory_swap("-1").unwrap(), -1);
        assert_eq!(parse_memory_swap("1g").unwrap(), 1 << 30);
        assert!(parse_memory_swap("-2").is_err());
    }

    #[test]
    fn network_mode_wins_over_the_job_network() {
        let spec = ContainerSpec {
            network_mode: Some("host".into()),
            network: Some(NetworkAttachment {
                network: "net".into(),
                aliases: vec![],
            }),
            ..ContainerSpec::new("img")
        };
        let body = spec.to_create_body(HashMap::new(), false);
        assert_eq!(
            body.host_config.unwrap().network_mode.as_deref(),
            Some("host")
        );
        assert!(body.networking_config.is_none());
        assert_eq!(body.open_stdin, Some(false));
    }

    #[test]
    fn service_body_joins_the_network_under_its_aliases() {
        let spec = ServiceSpec {
            image: "svc".into(),
            aliases: vec!["db".into(), "postgres".into()],
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            command: Some(vec!["exec httpd".into()]),
            env: vec![("K".into(), "V".into())],
            binds: vec!["/h/builds:/builds".into()],
            privileged: true,
            memory: Some(64 << 20),
            nano_cpus: Some(250_000_000),
            dns: vec!["10.0.0.53".into()],
            extra_hosts: vec!["db:10.0.0.2".into()],
            options: HostOptions {
                tmpfs: HashMap::from([("/var/lib/data".to_owned(), "rw".to_owned())]),
                security_opt: vec!["seccomp=unconfined".into()],
                ..HostOptions::default()
            },
        };
        let body = spec.to_create_body(HashMap::new(), "jobnet");
        assert_eq!(body.cmd, Some(vec!["exec httpd".to_owned()]));
        let host = body.host_config.clone().unwrap();
        assert_eq!(host.binds, Some(vec!["/h/builds:/builds".to_owned()]));
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.network_mode.as_deref(), Some("jobnet"));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.nano_cpus, Some(250_000_000));
        assert_eq!(host.dns, Some(vec!["10.0.0.53".to_owned()]));
        assert_eq!(host.extra_hosts, Some(vec!["db:10.0.0.2".to_owned()]));
        assert_eq!(host.tmpfs.unwrap()["/var/lib/data"], "rw");
        assert_eq!(
            host.security_opt,
            Some(vec!["seccomp=unconfined".to_owned()])
        );
        assert_eq!(body.env, Some(vec!["K=V".to_owned()]));
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            endpoints["jobnet"].aliases,
            Some(vec!["db".to_owned(), "postgres".to_owned()])
        );
    }
}
