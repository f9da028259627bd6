//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

const ABOUT: &str = "Edit one file together, each from your own terminal.";

const LONG_ABOUT: &str = "\
Edit one file together, each from your own terminal.

Everyone who runs collab-tui with the same --room edits the same text; each
person's caret and selection show in their colour. Typing never waits for
the network: when the connection drops you keep editing, and your edits
merge when it comes back.

With no --server and no $COLLAB_SERVER, collab-tui uses a server on
127.0.0.1:7878 and starts one in the background if none is running (it
listens on loopback only, keeps its rooms in ~/.local/share/collab/local,
and stops by itself when the room has been empty for a while; if it dies,
the editors start a new one and bring their text back). Someone else on the
same machine joins with the same command.

FILE seeds the room if the room is empty; otherwise the room's text is
shown and FILE is where Ctrl-S saves. A folder (DIR) in place of FILE shares
its text files as a workspace room (a tree of files: F7 shows it); with no
path at all, collab-tui joins whatever the room holds. Press F1 in the
editor for every key.";

#[derive(Debug, Parser)]
#[command(
    name = "collab-tui",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    // Written out: clap's own lists the options it found set, $USER making
    // --user look required.
    override_usage = "collab-tui --room <ROOM> [--user <NAME>] [--server <URL>] [--token <TOKEN>] [--ca <FILE>] [FILE]"
)]
pub struct Cli {
    /// The collab server, ws://HOST:PORT [default: $COLLAB_SERVER, else
    /// ws://127.0.0.1:7878, started in the background when nothing listens]
    #[arg(long, env = "COLLAB_SERVER", hide_env = true, value_name = "URL")]
    pub server: Option<String>,

    /// The room to join: letters, digits, '-', '_' and '.'
    #[arg(long, required = true)]
    pub room: Option<String>,

    /// Your name in the room [default: $USER]
    #[arg(long, env = "USER", hide_env = true, value_name = "NAME")]
    pub user: Option<String>,

    /// Access token, when the server asks for one
    #[arg(long, env = "COLLAB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Also trust this PEM certificate for wss:// (a self-signed server)
    #[arg(long, env = "COLLAB_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// The file: seeds an empty room, and Ctrl-S saves to it. A folder:
    /// shared as a workspace room. None: join what the room holds
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Run a loopback-only server (what the editor starts in the background).
    #[command(hide = true)]
    Serve {
        /// Loopback address to listen on.
        #[arg(long, default_value = crate::autostart::DEFAULT_ADDR)]
        bind: SocketAddr,
        /// Stop after this many seconds without any connection.
        #[arg(long, default_value_t = 30)]
        idle_shutdown: u64,
        /// Where rooms are kept [default: local/ in the platform's data
        /// directory for collab, e.g. ~/.local/share/collab/local]
        #[arg(long, value_name = "DIR", conflicts_with = "memory")]
        data_dir: Option<PathBuf>,
        /// Keep nothing on disk: rooms are lost when the server stops.
        #[arg(long)]
        memory: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_line_shows_only_room_as_required() {
        let err = Cli::try_parse_from(["collab-tui", "--server", "ws://h:1", "--user", "ann"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--room <ROOM>"), "{err}");
        assert!(
            err.contains("Usage: collab-tui --room <ROOM> [--user <NAME>] [--server <URL>]"),
            "{err}"
        );
    }
}
