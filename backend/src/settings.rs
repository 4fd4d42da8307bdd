//! [`Settings`] and their checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A setting out of range, found by [`Settings::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct SettingsError {
    /// The flag that names the setting, e.g. `--heartbeat`.
    pub setting: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

fn invalid(setting: &'static str, message: String) -> SettingsError {
    SettingsError { setting, message }
}

/// How the server runs. `Settings::default()` matches the flag defaults.
///
/// Server settings, each with a safe default: built in code, or (feature `cli`) from
/// flags and environment variables with clap. Durations on the command line are
/// written like `60m`, `30s`, `1h 30m` (humantime).
///
/// In code, name what differs from the defaults:
///
/// ```
/// use std::time::Duration;
/// use keepsake::Settings;
///
/// let settings = Settings {
///     addr: "0.0.0.0:8080".parse()?,
///     session_retention: Duration::from_secs(15 * 60),
///     store: "redis://127.0.0.1:6379/0".into(),
///     ..Settings::default()
/// };
/// // `Server::new` checks them too; this is the same check, without a server.
/// settings.validate()?;
/// assert!(Settings { heartbeat: Duration::ZERO, ..settings }.validate().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// With feature `cli`, [`Settings`] is a clap `Args`: flatten it into a program's own
/// parser (`#[command(flatten)] settings: Settings`) for the flags and environment
/// variables `keepsake-demo` takes.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Settings {
    /// Address and port to listen on (Gradio's port by default).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "KEEPSAKE_ADDR", default_value = "127.0.0.1:7860")
    )]
    pub addr: SocketAddr,

    /// Serve the client from this directory (index.html, wasm, js, css, with their
    /// `.br`/`.gz` copies) instead of the copy built into the binary: for client
    /// development. Unset: the built-in client.
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_STATIC_DIR"))]
    pub static_dir: Option<PathBuf>,

    /// How long a session is kept after its last page closed (Gradio: 60 min).
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_SESSION_RETENTION", default_value = "60m", value_parser = humantime::parse_duration))]
    pub session_retention: Duration,

    /// Most sessions kept per app; the least recently used is evicted beyond it.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "KEEPSAKE_SESSION_CAPACITY", default_value_t = 10_000)
    )]
    pub session_capacity: u64,

    /// Largest accepted request body, in bytes.
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_MAX_BODY_BYTES", default_value_t = 1024 * 1024))]
    pub max_body_bytes: usize,

    /// How long an event handler may run before it is cut off; for a streaming
    /// handler, the longest wait for its first item and between two items (the
    /// whole stream has `--stream-timeout`).
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_EVENT_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration))]
    pub event_timeout: Duration,

    /// How long a streaming handler's whole reply may run, items flowing; past it
    /// the event fails and writes nothing.
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_STREAM_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration))]
    pub stream_timeout: Duration,

    /// How long a streamed reply is kept after it ended for a page whose connection
    /// dropped to come back for the rest (a running reply is kept while it runs,
    /// read or not). A page that comes back later finds the reply gone
    /// (`unknown_reply`); the reply itself landed as any event does.
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_RESUME_WINDOW", default_value = "60s", value_parser = humantime::parse_duration))]
    pub resume_window: Duration,

    /// Most items one streaming handler's reply may yield; one more fails the event
    /// and writes nothing.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "KEEPSAKE_MAX_STREAM_ITEMS", default_value_t = 100_000)
    )]
    pub max_stream_items: usize,

    /// Most partial answers a streaming reply sends per second: items that come
    /// faster are merged (the latest is sent when its turn comes; the final result
    /// always carries the last).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "KEEPSAKE_MAX_PARTIALS_PER_SECOND", default_value_t = 30)
    )]
    pub max_partials_per_second: u32,

    /// Interval of heartbeats on each page's stream.
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_HEARTBEAT", default_value = "15s", value_parser = humantime::parse_duration))]
    pub heartbeat: Duration,

    /// Largest total size of one session's states (their JSON encoding), in bytes.
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_MAX_STATE_BYTES", default_value_t = 1024 * 1024))]
    pub max_state_bytes: usize,

    /// Events one session may send per second (bursts of as many are allowed).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "KEEPSAKE_MAX_EVENTS_PER_SECOND", default_value_t = 50)
    )]
    pub max_events_per_second: u32,

    /// Open streams (pages) allowed in total.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "KEEPSAKE_MAX_FEEDS", default_value_t = 10_000)
    )]
    pub max_feeds: usize,

    /// Open streams allowed per session.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "KEEPSAKE_MAX_FEEDS_PER_SESSION", default_value_t = 8)
    )]
    pub max_feeds_per_session: u32,

    /// Origins allowed to call the API from other sites (CORS), e.g.
    /// `https://example.com`; repeat the flag or separate with commas. None by default:
    /// only pages served by this server may call it.
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "allow-origin",
            env = "KEEPSAKE_ALLOW_ORIGINS",
            value_delimiter = ','
        )
    )]
    pub allow_origins: Vec<String>,

    /// Where session values and globals are kept: `memory` (this process) or a
    /// Redis URL (`redis://host:port/db`) so that several instances serve one app
    /// without sticky sessions.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "KEEPSAKE_STORE", default_value = "memory")
    )]
    pub store: String,

    /// Prefix of every Redis key and channel this server uses (instances of one
    /// deployment share it; separate deployments on one Redis must not).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "KEEPSAKE_STORE_NAMESPACE", default_value = "keepsake")
    )]
    pub store_namespace: String,

    /// How often expired sessions are collected.
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_SWEEP_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration))]
    pub sweep_interval: Duration,

    /// Sessions one client address may start per minute (bursts of as many are
    /// allowed); more answer 429 with `Retry-After`. Keeps one client from pushing
    /// everybody else's sessions out of the capacity.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            env = "KEEPSAKE_MAX_SESSION_STARTS_PER_MINUTE",
            default_value_t = 120
        )
    )]
    pub max_session_starts_per_minute: u32,

    /// Reverse proxies whose `X-Forwarded-For` header is believed (addresses or
    /// CIDR ranges, e.g. `127.0.0.1` or `10.0.0.0/8`; repeat the flag or separate
    /// with commas). Requests from anywhere else are limited by their own address.
    #[cfg_attr(feature = "cli", arg(long = "trust-proxy", env = "KEEPSAKE_TRUST_PROXIES", value_delimiter = ',', value_parser = parse_network))]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The `Content-Security-Policy` header of the client's pages and files (an empty
    /// value sends none). The hashes of the inline scripts of the served `index.html`
    /// are added to its `script-src` (and `script-src-elem`) directive, unless that
    /// directive says `'none'` or `'unsafe-inline'`; a policy without `script-src`
    /// must allow them itself.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            env = "KEEPSAKE_CONTENT_SECURITY_POLICY",
            default_value = DEFAULT_CONTENT_SECURITY_POLICY
        )
    )]
    pub content_security_policy: String,

    /// Opens the Gradio-compatible API under each app's URL (`/apps/{app}/config`,
    /// `/apps/{app}/gradio_api/...`), for `gradio_client` and Gradio's curl calls.
    /// Its calls run in Keepsake sessions named by the client's `session_hash`.
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_GRADIO_API"))]
    pub gradio_api: bool,

    /// Opens an MCP server (streamable HTTP) at `/apps/{app}/mcp` for each app: every
    /// listener with an `api_name` is a tool, and each MCP session is a Keepsake
    /// session. Needs the crate's `mcp` feature (refused at start-up without it).
    #[cfg_attr(feature = "cli", arg(long, env = "KEEPSAKE_MCP"))]
    pub mcp: bool,
}

/// The default `Content-Security-Policy`: scripts, styles, connections and
/// everything else from this origin only (images also as `data:` URLs),
/// WebAssembly compilation allowed, no plugins, no `<base>` or form posts elsewhere,
/// no framing by other sites, and violations reported to this server.
pub const DEFAULT_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
     script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'self'; report-uri /api/csp-reports";

/// An address (`10.0.0.1`) or a range (`10.0.0.0/8`).
#[cfg(feature = "cli")]
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a CIDR range"))
}

/// The longest duration a setting accepts: longer ones are mistakes (and would
/// overflow the clock arithmetic of deadlines).
const LONGEST: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// The shortest duration a setting accepts: shorter ones are mistakes (a heartbeat
/// or sweep every nanosecond would keep a core busy doing nothing).
const SHORTEST: Duration = Duration::from_millis(10);

impl Settings {
    /// Checks every setting, so that a mistake is a clear message at start-up rather
    /// than a panic in a background task or sessions that never expire.
    /// [`crate::Server::new`] calls it.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let durations = [
            ("--session-retention", self.session_retention, LONGEST),
            (
                "--event-timeout",
                self.event_timeout,
                Duration::from_secs(24 * 60 * 60),
            ),
            (
                "--stream-timeout",
                self.stream_timeout,
                Duration::from_secs(24 * 60 * 60),
            ),
            ("--heartbeat", self.heartbeat, Duration::from_secs(60 * 60)),
            (
                "--resume-window",
                self.resume_window,
                Duration::from_secs(60 * 60),
            ),
            (
                "--sweep-interval",
                self.sweep_interval,
                Duration::from_secs(60 * 60),
            ),
        ];
        for (setting, value, most) in durations {
            if value.is_zero() {
                return Err(invalid(setting, "must be longer than zero".into()));
            }
            if value < SHORTEST {
                return Err(invalid(
                    setting,
                    format!(
                        "{} is shorter than the least it accepts, {}: a timer that short is a busy loop",
                        humantime::format_duration(value),
                        humantime::format_duration(SHORTEST)
                    ),
                ));
            }
            if value > most {
                return Err(invalid(
                    setting,
                    format!(
                        "{} is longer than the most it accepts, {}",
                        humantime::format_duration(value),
                        humantime::format_duration(most)
                    ),
                ));
            }
        }
        let counts = [
            ("--session-capacity", self.session_capacity),
            ("--max-body-bytes", self.max_body_bytes as u64),
            ("--max-state-bytes", self.max_state_bytes as u64),
            ("--max-stream-items", self.max_stream_items as u64),
            (
                "--max-partials-per-second",
                u64::from(self.max_partials_per_second),
            ),
            (
                "--max-events-per-second",
                u64::from(self.max_events_per_second),
            ),
            ("--max-feeds", self.max_feeds as u64),
            (
                "--max-feeds-per-session",
                u64::from(self.max_feeds_per_session),
            ),
            (
                "--max-session-starts-per-minute",
                u64::from(self.max_session_starts_per_minute),
            ),
        ];
        for (setting, value) in counts {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1".into()));
            }
        }
        if self.store_namespace.is_empty() {
            return Err(invalid("--store-namespace", "must not be empty".into()));
        }
        // A header value holds visible ASCII, spaces and tabs only.
        if let Some((at, c)) = self
            .content_security_policy
            .char_indices()
            .find(|&(_, c)| !(c == '\t' || (' '..='~').contains(&c)))
        {
            return Err(invalid(
                "--content-security-policy",
                format!(
                    "{c:?} at byte {at} is not allowed in a header value (only visible ASCII, spaces and tabs are)"
                ),
            ));
        }
        if self.mcp && !cfg!(feature = "mcp") {
            return Err(invalid(
                "--mcp",
                "this build has no MCP server: build keepsake with its `mcp` feature".into(),
            ));
        }
        Ok(())
    }

    /// How much longer than `retention` after its last use a session may be kept: the
    /// memory store moves a session's deadline in steps of 1/64 of the retention rather
    /// than on every event, so sessions end between `retention` and `retention +
    /// slack` after their last use, never before.
    pub fn retention_slack(retention: Duration) -> Duration {
        retention / 64
    }

    /// `memory` or `redis`, for logs and `/healthz` (never the URL: it may hold a
    /// password).
    pub fn store_kind(&self) -> &'static str {
        if self.store == "memory" {
            "memory"
        } else {
            "redis"
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 7860)),
            static_dir: None,
            session_retention: Duration::from_secs(60 * 60),
            session_capacity: 10_000,
            max_body_bytes: 1024 * 1024,
            event_timeout: Duration::from_secs(60),
            stream_timeout: Duration::from_secs(10 * 60),
            resume_window: Duration::from_secs(60),
            max_stream_items: 100_000,
            max_partials_per_second: 30,
            heartbeat: Duration::from_secs(15),
            sweep_interval: Duration::from_secs(1),
            max_state_bytes: 1024 * 1024,
            max_events_per_second: 50,
            max_feeds: 10_000,
            max_feeds_per_session: 8,
            allow_origins: Vec::new(),
            store: "memory".into(),
            store_namespace: "keepsake".into(),
            max_session_starts_per_minute: 120,
            trusted_proxies: Vec::new(),
            content_security_policy: DEFAULT_CONTENT_SECURITY_POLICY.into(),
            gradio_api: false,
            mcp: false,
        }
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_mcp_bridge_needs_its_feature() {
        let settings = Settings {
            mcp: true,
            ..Settings::default()
        };
        assert_eq!(settings.validate().is_ok(), cfg!(feature = "mcp"));
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn flag_defaults_match_default() {
        let parsed = Cli::parse_from(["keepsake"]).settings;
        let default = Settings::default();
        assert_eq!(parsed.addr, default.addr);
        assert_eq!(parsed.session_retention, default.session_retention);
        assert_eq!(parsed.session_capacity, default.session_capacity);
        assert_eq!(parsed.max_body_bytes, default.max_body_bytes);
        assert_eq!(parsed.event_timeout, default.event_timeout);
        assert_eq!(parsed.stream_timeout, default.stream_timeout);
        assert_eq!(parsed.max_stream_items, default.max_stream_items);
        assert_eq!(
            parsed.max_partials_per_second,
            default.max_partials_per_second
        );
        assert_eq!(parsed.heartbeat, default.heartbeat);
        assert_eq!(parsed.sweep_interval, default.sweep_interval);
        assert_eq!(parsed.max_state_bytes, default.max_state_bytes);
        assert_eq!(parsed.max_events_per_second, default.max_events_per_second);
        assert_eq!(parsed.max_feeds, default.max_feeds);
        assert_eq!(parsed.max_feeds_per_session, default.max_feeds_per_session);
        assert_eq!(parsed.allow_origins, default.allow_origins);
        assert_eq!(parsed.store, default.store);
        assert_eq!(parsed.store_namespace, default.store_namespace);
        assert_eq!(
            parsed.max_session_starts_per_minute,
            default.max_session_starts_per_minute
        );
        assert_eq!(parsed.trusted_proxies, default.trusted_proxies);
        assert_eq!(
            parsed.content_security_policy,
            default.content_security_policy
        );
        assert!(default.validate().is_ok());
    }

    #[test]
    fn zero_and_absurd_settings_are_refused_with_the_flag_named() {
        for flags in [
            &["--heartbeat", "0s"][..],
            // Not zero, but a busy loop: a timer firing every nanosecond.
            &["--heartbeat", "1ns"],
            &["--sweep-interval", "1ms"],
            &["--event-timeout", "5ms"],
            &["--session-retention", "1us"],
            &["--sweep-interval", "0s"],
            &["--event-timeout", "0s"],
            &["--stream-timeout", "0s"],
            &["--stream-timeout", "2days"],
            &["--max-stream-items", "0"],
            &["--max-partials-per-second", "0"],
            &["--session-retention", "0s"],
            &["--session-retention", "1000000years"],
            &["--heartbeat", "2days"],
            &["--session-capacity", "0"],
            &["--max-session-starts-per-minute", "0"],
            &[
                "--content-security-policy",
                "default-src 'self'\nscript-src *",
            ],
            &["--content-security-policy", "default-src 'sélf'"],
        ] {
            let parsed =
                Cli::parse_from(std::iter::once("keepsake").chain(flags.iter().copied())).settings;
            let error = parsed.validate().expect_err("refused");
            assert!(error.to_string().contains(flags[0]), "{error}");
        }
        let parsed =
            Cli::parse_from(["keepsake", "--trust-proxy", "127.0.0.1,10.0.0.0/8"]).settings;
        assert_eq!(parsed.trusted_proxies.len(), 2);
        // An empty policy is valid: it turns the header off.
        let parsed = Cli::parse_from(["keepsake", "--content-security-policy", ""]).settings;
        assert_eq!(parsed.content_security_policy, "");
        assert!(parsed.validate().is_ok());
    }

    #[test]
    fn durations_are_human_readable() {
        let parsed = Cli::parse_from([
            "keepsake",
            "--session-retention",
            "90s",
            "--addr",
            "0.0.0.0:8080",
        ])
        .settings;
        assert_eq!(parsed.session_retention, Duration::from_secs(90));
        assert_eq!(parsed.addr.port(), 8080);
    }
}
