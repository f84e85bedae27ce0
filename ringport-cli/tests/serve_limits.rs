//! `ringport serve --idle-timeout 0.5` closes idle connections but not a slow transfer;
//! `--max-connections 2` tells the third client "busy" and closes it.

mod util;

use util::each_backend;
use util::files::{self, Tree, KIB, MIB};

#[test]
fn idle_timeout_flag() {
    let mut tree = Tree::new();
    let big = tree.add("big.bin", 16 * MIB);
    each_backend(|backend| {
        let args = ["--idle-timeout", "0.5", "--request-timeout", "0.5"];
        let serve = util::serve(tree.root(), backend, &args);
        files::idle_timeout_scenario(serve.addr, &big);
    });
}

#[test]
fn max_connections_flag() {
    let mut tree = Tree::new();
    let file = tree.add("file.bin", 20 * KIB);
    each_backend(|backend| {
        let serve = util::serve(tree.root(), backend, &["--max-connections", "2"]);
        files::max_connections_scenario(serve.addr, &file);
    });
}
