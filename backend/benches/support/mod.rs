//! What the criterion benches and `examples/bench/` share: the app they measure.

use keepsake::components::{Button, Number};
use keepsake::{Blocks, State};

/// A session counter: the smallest app whose event reads and writes session state
/// and returns an output.
pub fn counter_app() -> keepsake::App {
    let mut app = Blocks::new("bench-counter", "Bench counter");
    let count = app.state(State::new(0i64));
    let bump = app.add(Button::new("Bump"));
    let shown = app.add(Number::new().label("Count"));
    app.click(bump, count, (count, shown), |n: i64| {
        (n + 1, (n + 1) as f64)
    })
    .api_name("bump");
    app.build().expect("bench app builds")
}
