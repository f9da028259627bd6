//! `collab-tui`: the terminal editor. Everything is in the library (see
//! `run.rs`); this is the entry point only.

fn main() -> std::process::ExitCode {
    collab_tui::run::main()
}
