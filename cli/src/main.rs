//! `gantry`: see `gantry --help`.

fn main() -> std::process::ExitCode {
    gantry_cli::main_with(std::env::args_os())
}
