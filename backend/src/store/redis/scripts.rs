//! The Lua scripts of the Redis store, one per step that reads and writes more than
//! one key, so each step is atomic across instances. They live in `scripts/*.lua`
//! (readable, diffable Lua) and are compiled in; all but `release` and `renew` start with the
//! shared prelude (`now_ms`, `end_session`, the `ATTACHED` band).

use redis::Script;

const PRELUDE: &str = include_str!("scripts/prelude.lua");

pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) load: Script,
    pub(super) commit: Script,
    pub(super) release: Script,
    pub(super) renew: Script,
    pub(super) sweep: Script,
    pub(super) feed_open: Script,
    pub(super) feed_keepalive: Script,
    pub(super) feed_close: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Scripts {
            create: with_prelude(include_str!("scripts/create.lua")),
            load: with_prelude(include_str!("scripts/load.lua")),
            commit: with_prelude(include_str!("scripts/commit.lua")),
            release: Script::new(include_str!("scripts/release.lua")),
            renew: Script::new(include_str!("scripts/renew.lua")),
            sweep: with_prelude(include_str!("scripts/sweep.lua")),
            feed_open: with_prelude(include_str!("scripts/feed_open.lua")),
            feed_keepalive: with_prelude(include_str!("scripts/feed_keepalive.lua")),
            feed_close: with_prelude(include_str!("scripts/feed_close.lua")),
        }
    }
}
