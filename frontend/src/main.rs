//! Entry point of the browser client built by trunk.

fn main() {
    keepsake_frontend::start();
}
